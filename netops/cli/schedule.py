"""Scheduled maintenance commands: `schedule list`, `schedule check`, `scheduler [--once]`."""

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from netops.cli.app import (
    F,
    Group,
    Settings,
    app,
    json_option,
    open_journal,
    path_type,
    settings,
)
from netops.engine.result import ExitCode
from netops.errors import UserError

if TYPE_CHECKING:
    import threading

    from netops.journal import Journal
    from netops.plain import Out
    from netops.schedule import Schedule
    from netops.scheduler import Scheduler

# Mounted on `app` at the end of this module: `netops --help` lists it after `scheduler`.
schedule_app = Group("schedule", no_args_is_help=True,
                     help="Scheduled maintenance: schedules.yaml beside the inventory.")


def schedules_option(f: F) -> F:
    """--schedules: the schedules file (None: schedules.yaml beside the inventory)."""
    return click.option(
        "--schedules", type=path_type(), metavar="<path>", envvar="NETOPS_SCHEDULES",
        show_envvar=True,
        help="The schedules file (default: schedules.yaml beside the inventory).")(f)


def _path(s: Settings, given: Path | None) -> Path:
    from netops.schedule import default_path

    return given or default_path(s.inventory)


def _validated(s: Settings, path: Path) -> "tuple[dict[str, Schedule], list[UserError]]":
    """The schedules, and every problem found against the runbooks and the inventory."""
    from netops.schedule import load_schedules, validate

    schedules = load_schedules(path)
    return schedules, validate(schedules, s.find_runbook, s.load_inventory())


def _window_warnings(s: Settings, schedules: "dict[str, Schedule]") -> list[str]:
    """Schedules of disruptive runbooks whose next fire is outside the nodes' windows."""
    from netops.schedule import check_windows, fmt_time

    inventory = s.load_inventory()
    out = []
    for sc in schedules.values():
        nxt = sc.next_fire(time.time())
        if sc.dry_run or sc.diagnose or not sc.enabled or nxt is None \
                or not s.find_runbook(sc.runbook).disruptive:
            continue
        outside = check_windows(inventory.select(sc.nodes), nxt + 1).outside
        if outside:
            out.append(f"{sc.span}: warning: schedule {sc.name!r} fires at "
                       f"{fmt_time(nxt, sc.tz)}, outside the maintenance window of "
                       f"{', '.join(sorted(outside))}: netops run will refuse that run")
    return out


@schedule_app.command("check")
@schedules_option
@click.pass_context
def check_cmd(ctx: click.Context, schedules: Path | None) -> int:
    """Validate schedules.yaml: its shape, cron and time zones, and each schedule's runbook,
    vars and nodes (errors as file:line:col)."""
    s = settings(ctx)
    path = _path(s, schedules)
    found, errors = _validated(s, path)
    for e in errors:
        sys.stderr.write(f"{e}\n")
    if not errors:
        for w in _window_warnings(s, found):
            sys.stderr.write(w + "\n")
    sys.stderr.write(f"{path}: {len(found)} schedule(s), {len(errors)} problem(s)\n")
    return ExitCode.BAD_INPUT if errors else ExitCode.OK


@schedule_app.command("list")
@schedules_option
@click.option("--next", "count", type=click.IntRange(min=1), default=3, metavar="<n>",
              help="Next fire times shown.")
@click.option("--last", type=click.IntRange(min=0), default=3, metavar="<n>",
              help="Past fires shown.")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, schedules: Path | None, count: int, last: int,
             as_json: bool) -> int:
    """Each schedule with its next fire times and its last fires (from the journal)."""
    from netops.schedule import load_schedules

    s = settings(ctx)
    path = _path(s, schedules)
    found = load_schedules(path)
    journal = open_journal(ctx)
    now = time.time()
    docs = [_doc(sc, journal, now, count, last) for sc in found.values()]
    if as_json:
        sys.stdout.write(json.dumps({"schedules": docs}) + "\n")
        return ExitCode.OK
    _table(s.console(), path, found, docs)
    return ExitCode.OK


def _doc(sc: "Schedule", journal: "Journal", now: float, count: int,
         last: int) -> dict[str, Any]:
    from netops.schedule import fmt_time

    fires = []
    for row in journal.fires(sc.name, limit=last) if last else []:
        status = row.run_status
        if row.run_id and not status:
            run = journal.run(row.run_id)
            status = run.status if run else None
        fires.append({"fire_time": row.fire_time, "at": fmt_time(row.fire_time, sc.tz),
                      "status": row.status, "run_id": row.run_id, "run_status": status,
                      "exit_code": row.exit_code, "note": row.note})
    return {"name": sc.name, "runbook": sc.runbook, "nodes": sc.nodes, "cron": sc.cron.text,
            "timezone": sc.tz.key, "window_s": sc.window, "dry_run": sc.dry_run,
            "catch_up": sc.catch_up, "enabled": sc.enabled, "description": sc.description,
            "diagnose": sc.diagnose, "notify": [str(t) for t in sc.notify],
            "next": [fmt_time(t, sc.tz) for t in sc.cron.upcoming(now, sc.tz, count)]
            if sc.enabled else [], "last": fires}


def _table(console: "Out", path: Path, found: "dict[str, Schedule]",
           docs: list[dict[str, Any]]) -> None:
    from netops.plain import print_table
    from netops.schedule import fmt_duration

    rows = []
    for d in docs:
        last = [f"{f['at']} {f['status']}" + (f" {f['run_id']}" if f["run_id"] else "")
                + (f" {f['run_status']}" if f["run_status"] else
                   f" (exit {f['exit_code']})" if f["exit_code"] not in (None, 0) else "")
                for f in d["last"]]
        rows.append((d["name"] + ("" if d["enabled"] else " (disabled)"),
                     d["runbook"] + (" (dry run)" if d["dry_run"] else ""), d["nodes"],
                     f"{d['cron']} {d['timezone']}",
                     fmt_duration(d["window_s"]) + (", catch-up" if d["catch_up"] else ""),
                     "\n".join(d["next"]), "\n".join(last)))
    print_table(("schedule", "runbook", "nodes", "when", "window", "next", "last"), rows,
                title=f"schedules in {path}")
    if not found:
        console.print(f"no schedules in {path}", markup=False)


def _global_args(s: Settings) -> list[str]:
    """The scheduler's own global options, for the `netops run` processes it starts."""
    args = [a for source in (s.inventories or [s.inventory])
            for a in ("-i", str(source.resolve()))]
    args += ["--host-keys", str(s.host_keys.value), "--connect-timeout",
             f"{s.connect_timeout:g}"]
    if s.journal:
        args += ["--journal", s.journal if "://" in s.journal
                 else str(Path(s.journal).expanduser().resolve())]
    for d in s.runbooks:
        args += ["--runbooks", str(d.resolve())]
    if s.ssh_config:
        args += ["--ssh-config", str(s.ssh_config.resolve())]
    return args


class _Reloader:
    """Re-reads schedules.yaml when it changes; an invalid edit keeps the schedules in force."""

    def __init__(self, s: Settings, path: Path, say: Any) -> None:
        self.s, self.path, self.say = s, path, say
        self.stamp = self._stamp()

    def _stamp(self) -> tuple[float, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime, st.st_size

    def __call__(self) -> "dict[str, Schedule] | None":
        stamp = self._stamp()
        if stamp == self.stamp:
            return None
        self.stamp = stamp
        try:
            found, errors = _validated(self.s, self.path)
        except UserError as e:
            errors, found = [e], {}
        if errors:
            self.say(f"{self.path} changed but is invalid; keeping the schedules in force:\n"
                     + "\n".join(str(e) for e in errors))
            return None
        self.say(f"{self.path} reloaded: {len(found)} schedule(s)")
        return found


@app.command("scheduler")
@schedules_option
@click.option("--once", is_flag=True,
              help="Fire whatever is due now, wait for those runs, exit (for cron).")
@click.option("--grace", default="60s", metavar="<duration>",
              help="A fire handled later than this counts as missed (with --once from "
              "cron: at least the cron interval).")
@click.option("--stop-timeout", default="60s", metavar="<duration>",
              help="On SIGTERM: how long runs in flight may take to halt cleanly "
              "before they are interrupted again.")
@click.option("--metrics-port", type=click.IntRange(min=0, max=65535), metavar="<port>",
              help="Serve Prometheus metrics on http://ADDRESS:PORT/metrics.")
@click.option("--metrics-address", default="127.0.0.1", metavar="<ip>",
              help="Address --metrics-port listens on (0.0.0.0 for a remote Prometheus).")
@click.pass_context
def scheduler_cmd(ctx: click.Context, schedules: Path | None, once: bool, grace: str,
                  stop_timeout: str, metrics_port: int | None, metrics_address: str) -> int:
    """Run the schedules in the foreground: fire due runs into the journal.

    Never runs a schedule twice at once; a run stops starting batches when its window closes
    (halted, resumable); fires missed while the scheduler was down are recorded, not run late
    (unless `catch_up: true` and the window is still open). SIGTERM or Ctrl-C: no new fire,
    runs in flight halt cleanly, then it exits. contrib/netops-scheduler.service is a systemd
    unit for it.

    --metrics-port serves runs by schedule and status, last fire and last success per
    schedule, hosts by status, missed fires and the last scheduled diagnose's matrix.
    Schedules with `notify:` call their webhooks when a run ends or halts, or a fire is
    missed (never blocking a run; the scheduler waits for deliveries a bounded time on exit).

    Exit 0 when stopped; 2 when schedules.yaml (or a runbook, var or node pattern it names) is
    invalid; with --once, 1 when a run it fired did not end ok.

    \b
    Cron example (every minute; the grace covers cron's start-up delay):
    * * * * *  netops scheduler --once --grace 2m
    """
    from netops.runbook.model import parse_duration
    from netops.schedule import fmt_time
    from netops.scheduler import ProcessLauncher, Scheduler

    s = settings(ctx)
    console = s.console()
    path = _path(s, schedules)
    found, errors = _validated(s, path)
    if errors:
        for e in errors:
            sys.stderr.write(f"{e}\n")
        return ExitCode.BAD_INPUT

    def say(text: str) -> None:
        console.print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}", markup=False,
                      highlight=False, soft_wrap=True)  # one line per event in logs

    journal = open_journal(ctx)
    sched = Scheduler(journal, ProcessLauncher(_global_args(s), cwd=Path.cwd()),
                      grace=parse_duration(grace), report=say)
    sched.set_schedules(found)
    notifier, server = _watch(sched, journal, say, metrics_port, metrics_address)
    stop = _stop_on_signals(say)
    timeout = parse_duration(stop_timeout)
    try:
        if once:
            sched.once(stop, timeout)
            failed = [o for _, o in sched.ended if o.exit_code != 0]
            return ExitCode.FAILED if failed else ExitCode.OK
        say(f"scheduler started: {len(found)} schedule(s) from {path}; journal {journal.path}")
        for sc in found.values():
            nxt = sc.next_fire(time.time())
            say(f"  {sc.name}: {sc.cron.text} {sc.tz.key}, next "
                + (fmt_time(nxt, sc.tz) if nxt and sc.enabled else "never (disabled)"))
        sched.serve(stop, _Reloader(s, path, say), stop_timeout=timeout)
    finally:
        _unwatch(notifier, server)
    say("scheduler stopped")
    return ExitCode.OK


def _stop_on_signals(say: Any) -> "threading.Event":
    """An event SIGTERM and SIGINT set: no new fire, runs in flight halt cleanly."""
    import signal
    import threading

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if not stop.is_set():
            say(f"{signal.Signals(signum).name}: no new fires; stopping")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    return stop


def _watch(sched: "Scheduler", journal: "Journal", say: Any, port: int | None,
           address: str) -> tuple[Any, Any]:
    """Notifications (always: schedules name their own webhooks) and, with a port, metrics."""
    from netops.notify import Notifier, ScheduleNotifier

    notifier = Notifier(say=say)
    sched.watchers.append(ScheduleNotifier(journal, notifier))
    server = None
    if port is not None:
        from netops.metrics import SchedulerMetrics, serve

        metrics = SchedulerMetrics(journal)
        sched.watchers.append(metrics)
        server = serve(metrics.registry, port, address)
        say(f"metrics on http://{address}:{server.server_port}/metrics")
    return notifier, server


def _unwatch(notifier: Any, server: Any) -> None:
    notifier.wait()
    if server is not None:
        server.shutdown()
        server.server_close()


app.add_command(schedule_app)
