"""Runbook commands of the CLI: list, show, validate, schema, run."""

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from netops.cli import (
    JsonOpt,
    NodesOpt,
    Settings,
    app,
    exit_code_for,
    open_journal,
    preflight,
    settings,
)
from netops.engine.result import ExitCode
from netops.errors import UserError

if TYPE_CHECKING:
    from netops.engine.events import Observer
    from netops.engine.plan import Plan
    from netops.engine.prepare import Resume
    from netops.inventory.model import Host
    from netops.journal import Journal, RunRecord
    from netops.plain import Out
    from netops.runbook.model import Runbook
    from netops.transport.base import Transport
    from netops.transport.ssh import SshConnector


def runbook_dirs(s: Settings) -> list[Path]:
    """--runbooks dirs, then ./runbooks, then the library shipped beside the package."""
    shipped = Path(__file__).resolve().parent.parent / "runbooks"
    dirs = [*s.runbooks, Path("runbooks"), shipped]
    return [d for i, d in enumerate(dirs) if d.is_dir() and d.resolve() not in
            {x.resolve() for x in dirs[:i]}]


def find(s: Settings, name: str) -> "Runbook":
    from netops.runbook.load import find_runbooks, load_runbook

    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return load_runbook(path)
    found = find_runbooks(runbook_dirs(s))
    if name not in found:
        import difflib

        close = difflib.get_close_matches(name, list(found), n=3)
        raise UserError(f"no runbook named {name!r}",
                        hint=f"did you mean: {', '.join(close)}?" if close
                        else "`netops list` shows the library")
    return load_runbook(found[name])


@app.command("list")
def list_cmd(ctx: typer.Context) -> int:
    """List the runbooks with their one-line descriptions."""
    from rich.table import Table

    from netops.runbook.load import load_all

    s = settings(ctx)
    books, errors = load_all(runbook_dirs(s))
    table = Table(title="runbooks")
    for col in ("runbook", "disruptive", "description"):
        table.add_column(col)
    for name in sorted(books):
        rb = books[name]
        table.add_row(name, "yes" if rb.disruptive else "",
                      _first_sentence(rb.description))
    console = s.console()
    console.print(table)
    for e in errors:
        console.print(f"[red]invalid:[/] {e}", markup=True, highlight=False)
    return ExitCode.BAD_INPUT if errors else ExitCode.OK


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    head, dot, _ = flat.partition(". ")
    return head + ("." if dot else "")


@app.command("show")
def show_cmd(ctx: typer.Context, runbook: Annotated[str, typer.Argument()]) -> int:
    """Show a runbook's params and steps (kind, where it runs, whether it mutates)."""
    from rich.table import Table

    s = settings(ctx)
    rb = find(s, runbook)
    console = s.console()
    console.print(f"[bold]{rb.name}[/] — {rb.description.strip()}")
    if rb.params:
        t = Table(title="params")
        for col in ("name", "type", "default", "help"):
            t.add_column(col)
        for name, p in rb.params.items():
            default = "(required)" if p.required else ("***" if p.secret else repr(p.default))
            t.add_row(name, str(p.type), default, p.help or "")
        console.print(t)
    t = Table(title="steps")
    for col in ("phase", "id", "kind", "where", "mutates", "when"):
        t.add_column(col)
    for phase in ("before", "steps", "verify", "after"):
        for step in getattr(rb, phase):
            t.add_row(phase, step.id, step.kind, step.on + (f" ({step.group})" if step.group
                                                            else ""),
                      "yes" if step.mutates else "", step.when or "")
    console.print(t)
    return ExitCode.OK


@app.command("validate")
def validate_cmd(ctx: typer.Context,
                 files: Annotated[list[Path] | None, typer.Argument()] = None) -> int:
    """Check runbooks (all of the library if no file is given); errors as file:line:col."""
    from netops.runbook.load import load_all, load_runbook

    s = settings(ctx)
    errors: list[UserError] = []
    count = 0
    if files:
        for f in files:
            try:
                load_runbook(f)
                count += 1
            except UserError as bad:
                errors.append(bad)
    else:
        books, errors = load_all(runbook_dirs(s))
        count = len(books)
    for e in errors:
        sys.stderr.write(f"{e}\n")
    sys.stderr.write(f"{count} valid, {len(errors)} invalid\n")
    return ExitCode.BAD_INPUT if errors else ExitCode.OK


@app.command("schema")
def schema_cmd() -> int:
    """Print the JSON Schema of the runbook format (for editors)."""
    from netops.runbook.model import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
    return ExitCode.OK


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    runbook: Annotated[str | None, typer.Argument(
        help="Runbook name (see `netops list`) or file.")] = None,
    nodes: NodesOpt = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Run the read-only checks for real; show what would change.")] = False,
    batch_size: Annotated[str | None, typer.Option(
        "--batch-size", metavar="<sizes>",
        help="Hosts per batch: 2, 25%, or canaries like 1,25%,100% "
        "(the last repeats).")] = None,
    max_fail: Annotated[str | None, typer.Option(
        "--max-fail", metavar="<n|p%>",
        help="Failed hosts the whole run tolerates (N or P% of all targeted); "
        "one more halts it before the next batch.")] = None,
    pause: Annotated[str | None, typer.Option(
        "--pause", metavar="<duration|ask>",
        help="Between batches: a duration (30s, 2m) or 'ask'.")] = None,
    var: Annotated[list[str] | None, typer.Option(
        "--var", "-e", metavar="<name=value>",
        help="Runbook param NAME=VALUE (repeatable).")] = None,
    forks: Annotated[int, typer.Option("--forks", "-f", metavar="<n>", min=1,
                                       help="Hosts at a time within a batch.")] = 50,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="<seconds>", help="Default per-step timeout in seconds.")] = 300.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    resume: Annotated[str | None, typer.Option(
        "--resume", metavar="<run-id>",
        help="Finish an interrupted, halted or failed run: only its unfinished "
        "hosts, same runbook version and params; completed changes are not repeated.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Run a disruptive runbook outside the nodes' maintenance window "
        "(netops_maintenance_window); with --resume, also accept a runbook that changed "
        "since the run.")] = False,
    until: Annotated[str | None, typer.Option(
        "--until", metavar="<hh:mm|iso>",
        help="End of the maintenance window: HH:MM (next occurrence, local time) "
        "or an ISO date-time. No batch starts after it; the run halts, resumable.")] = None,
    as_json: JsonOpt = False,
) -> int:
    """Run a runbook on the selected nodes: rolling batches, health gates, a faithful dry run.

    Every run is journaled (`netops history`, `netops report RUN_ID`). Ctrl-C lets the steps
    in flight finish and marks the rest not-run (a second Ctrl-C abandons them); the run can
    then be finished with --resume RUN_ID.

    Examples:

      netops run check-ip-forward --nodes chick11,chick12 --dry-run

      netops run check-ip-forward --nodes workers --batch-size 1,25% --max-fail 1

      netops run --resume 3f2a9c1b7d0e

      netops run reset-flannel-subnet --nodes workers --batch-size 1 --until 06:00
    """
    import time

    s = settings(ctx)
    deadline = None
    if until:
        from netops.schedule import parse_until

        deadline = parse_until(until, time.time())
    journal = open_journal(ctx)
    prior = _resume_from(journal, resume, force) if resume else None
    if prior is not None:
        runbook, nodes, var, dry_run = prior.path, prior.nodes, prior.vars(var or []), False
    if runbook is None:
        raise UserError("which runbook? give its name, or --resume RUN_ID",
                        hint="`netops list` shows the library")
    rb = find(s, runbook)
    inventory = s.load_inventory()
    hosts = inventory.select(nodes)
    if prior is not None:
        hosts = tuple(h for h in hosts if h.name in prior.unfinished)
    if not hosts:
        raise UserError(f"--nodes {nodes!r} selects no host" if prior is None
                        else f"run {prior.run_id} has no unfinished host")
    if rb.disruptive and not dry_run:
        deadline = _maintenance_window(s.console(), rb, hosts, deadline, force)
    from netops.engine.prepare import Overrides, build_plan, describe

    over = Overrides(batch_size, max_fail, pause, forks, timeout, deadline)
    plan = build_plan(rb, inventory, hosts, var or [], over, dry_run=dry_run,
                      resume=prior.resume if prior else None)
    connector = s.connector()
    preflight(connector, hosts)
    from netops.plain import terminal

    asks = not (dry_run or yes) and terminal(sys.stderr) and sys.stdin.isatty()
    if not asks:
        # Every input is checked: open the connections (no command yet) while the console
        # and the engine load; handshakes mostly wait for the nodes.
        connector.warm(hosts, forks)
    console = s.console()
    for line in describe(plan):
        console.print(line, markup=False)
    if asks and not typer.confirm("Proceed?", default=False, err=True):
        return ExitCode.INTERRUPTED
    # A dry run writes nothing on a node, not even a lock; a read-only runbook needs none.
    if plan.dry_run or not any(step.mutates for step in rb.all_steps()):
        from netops.engine.readahead import predict, wrap_all

        journal.start_run(_record(s, plan, nodes))
        return _execute(s, console, plan, wrap_all(connector.transport, predict(plan)),
                        journal, as_json)
    return _locked_run(s, console, plan, connector, journal, nodes, as_json)


def _maintenance_window(console: "Out", rb: "Runbook", hosts: "tuple[Host, ...]",
                        deadline: float | None, force: bool) -> float | None:
    """Refuse a disruptive runbook on nodes outside their declared maintenance window (unless
    --force); inside it, no batch starts after the first of those windows closes."""
    import time

    from netops.schedule import WINDOW_VAR, check_windows, fmt_time

    check = check_windows(hosts, time.time())
    if check.outside:
        lines = "\n  ".join(f"{h}: {why}" for h, why in sorted(check.outside.items()))
        if not force:
            raise UserError(f"runbook {rb.name!r} is disruptive and {len(check.outside)} "
                            f"node(s) are outside their maintenance window ({WINDOW_VAR}):\n  "
                            f"{lines}", hint="run it inside the window, or give --force")
        console.print(f"--force: running {rb.name} outside the maintenance window of:\n  "
                      f"{lines}", markup=False)
        return deadline
    if check.closes is not None and (deadline is None or check.closes < deadline):
        console.print(f"maintenance window: no batch starts after {fmt_time(check.closes)}",
                      markup=False)
        return check.closes
    return deadline


def _locked_run(s: Settings, console: "Out", plan: "Plan", connector: "SshConnector",
                journal: "Journal", nodes: str | None, as_json: bool) -> int:
    """Lock every target node (all or nothing), run, release the locks."""
    from netops import locks
    from netops.engine.readahead import predict, wrap_all
    from netops.transport.kept import Kept

    record = _record(s, plan, nodes)
    hosts = {h.name: h for b in plan.batches for h in b}
    kept = {name: Kept(connector.transport(h)) for name, h in hosts.items()}
    holder = locks.new_holder(plan.run_id, record.operator, record.controller, record.pid)
    stale = locks.stale_check(lambda run_id: (journal.run(run_id) or {}).get("status"))
    locked, held, _ = locks.lock_all(list(hosts), kept.__getitem__, holder, stale, plan.forks)
    try:
        if held:
            raise locks.NodeLocked(held)
        journal.start_run(record)
        keeper = locks.LeaseKeeper(locked, kept.__getitem__, holder)
        connect = wrap_all(lambda h: kept[h.name], predict(plan))
        return _execute(s, console, plan, connect, journal, as_json, keeper)
    finally:
        locks.release_all(locked, kept.__getitem__, plan.run_id, plan.forks)
        for t in kept.values():
            t.inner.close()


def _record(s: Settings, plan: "Plan", nodes: str | None) -> "RunRecord":
    import hashlib

    from netops.journal import RunRecord
    from netops.transport.base import mask

    rb = plan.runbook
    params = {k: ("***" if rb.params[k].secret else v) for k, v in plan.params.items()}
    inv = s.inventory
    return RunRecord(
        run_id=plan.run_id, runbook=rb.name, runbook_path=str(rb.source.resolve()),
        runbook_sha256=hashlib.sha256(rb.source.read_bytes()).hexdigest(),
        inventory=str(inv.resolve()),
        inventory_sha256=hashlib.sha256(inv.read_bytes()).hexdigest() if inv.is_file() else "",
        nodes=nodes or "all", params=params, dry_run=plan.dry_run,
        batches=[[h.name for h in b] for b in plan.batches],
        argv=[mask(a, plan.secrets) for a in sys.argv], resumed_from=plan.resumed_from)


def _execute(s: Settings, console: "Out", plan: "Plan", connect: "Callable[[Host], Transport]",
             journal: "Journal", as_json: bool, *extra: "Observer") -> int:
    import signal

    from netops.engine.events import FanOut
    from netops.engine.execute import World, execute
    from netops.report import LiveView, plan_preview, show_summary
    from netops.transport.local import LocalTransport

    interactive = console.is_terminal and sys.stdin.isatty()
    world = World(
        connect=connect, controller=LocalTransport,
        observer=FanOut([journal.observer(plan.run_id, plan.secrets),
                         LiveView(console, verbose=s.verbose), *extra]),
        ask=(lambda q: typer.confirm(q, default=True, err=True)) if interactive else None,
    )

    def interrupt(signum: int, frame: object) -> None:
        if world.stop.is_set():  # second Ctrl-C: abandon the steps in flight
            journal.finish_run(plan.run_id, "interrupted",
                               "abandoned: a second interrupt left steps in flight")
            console.print(f"abandoned; steps in flight may still complete on the nodes. "
                          f"Resume with: netops run --resume {plan.run_id}")
            sys.stderr.flush()
            os._exit(ExitCode.INTERRUPTED)
        world.stop.set()
        console.print("[bold yellow]interrupted: finishing the steps in flight, marking the "
                      "rest not-run (Ctrl-C again to abandon them)[/]")

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        run = execute(plan, world)
    finally:
        signal.signal(signal.SIGINT, previous)
    if plan.dry_run:
        console.print(plan_preview(run))
    show_summary(console, run)
    if run.reason:
        console.print(f"[bold red]{run.reason}[/]")
    if run.status in ("interrupted", "halted", "failed") and not plan.dry_run:
        console.print(f"run {plan.run_id}: {run.status}. Finish it with: "
                      f"netops run --resume {plan.run_id}", markup=False)
    else:
        console.print(f"run {plan.run_id}: {run.status} (netops report {plan.run_id})",
                      markup=False)
    if as_json:
        sys.stdout.write(json.dumps(run.to_json()) + "\n")
    return exit_code_for(run)


@dataclass(frozen=True)
class _Prior:
    """An earlier run to finish."""

    run_id: str
    path: str
    nodes: str
    params: dict[str, Any]
    secret_names: frozenset[str]
    unfinished: frozenset[str]
    resume: "Resume"

    def vars(self, given: list[str]) -> list[str]:
        names = {g.partition("=")[0] for g in given}
        missing = sorted(self.secret_names - names)
        if missing:
            raise UserError(f"run {self.run_id} had secret params that the journal does not "
                            f"keep: give them again with --var {missing[0]}=...")
        return [f"{k}={_as_var(v)}" for k, v in self.params.items()
                if k not in self.secret_names and k not in names and v is not None] + given


def _as_var(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


FINISHED = ("ok", "changed", "skipped")


def _resume_from(journal: "Journal", run_id: str, force: bool) -> _Prior:
    import hashlib

    from netops.engine.host import ONCE
    from netops.engine.prepare import Resume
    from netops.runbook.load import load_runbook

    run = journal.run(run_id)
    if run is None:
        raise UserError(f"no run {run_id!r} in the journal {journal.path}",
                        hint="`netops history` lists runs")
    if run["dry_run"]:
        raise UserError(f"run {run['run_id']} was a dry run: nothing to resume")
    if run["status"] == "ok":
        raise UserError(f"run {run['run_id']} finished ok: nothing to resume")
    path = Path(run["runbook_path"])
    if not path.is_file():
        raise UserError(f"the runbook of run {run['run_id']} is gone: {path}")
    if hashlib.sha256(path.read_bytes()).hexdigest() != run["runbook_sha256"] and not force:
        raise UserError(f"{path} changed since run {run['run_id']}",
                        hint="resuming would mix two versions; use --force to accept that")
    hosts = journal.hosts(run["run_id"])
    unfinished = frozenset(h["host"] for h in hosts if h["status"] not in FINISHED)
    rb = load_runbook(path)
    once_ids = {st.id for st in (*rb.before, *rb.after)}
    done: dict[str, set[str]] = {}
    for st in journal.steps(run["run_id"]):
        if st["status"] in ("ok", "changed"):
            key = ONCE if st["step_id"] in once_ids else st["host"]
            done.setdefault(key, set()).add(st["step_id"])
    secrets = frozenset(k for k, p in rb.params.items() if p.secret)
    return _Prior(run["run_id"], str(path), run["nodes"], run["params"], secrets, unfinished,
                  Resume(run["run_id"], {k: frozenset(v) for k, v in done.items()}))
