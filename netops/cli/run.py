"""Runbook commands of the CLI: list, show, validate, schema, run."""

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from netops.cli.app import (
    Seconds,
    Settings,
    app,
    argument,
    exit_code_for,
    json_option,
    nodes_option,
    open_journal,
    path_type,
    settings,
    targets,
)
from netops.engine.result import ExitCode
from netops.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from netops.engine.plan import Plan
    from netops.engine.prepare import Overrides, Resume
    from netops.engine.result import RunResult
    from netops.inventory.model import Host, Inventory
    from netops.journal import Journal
    from netops.notify import Target
    from netops.plain import Out
    from netops.resume import ResumeState
    from netops.runbook.model import Runbook
    from netops.session import RunSession


RUNBOOK_HELP = "Runbook name (see `netops list`) or file."


@app.command("list")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> int:
    """List the runbooks: name, whether disruptive, where each was found, description.

    Runbooks are looked for in each --runbooks DIR, then ./runbooks, then
    $XDG_CONFIG_HOME/netops/runbooks (default ~/.config/netops/runbooks), then the library
    shipped with netops; the first place a name is found wins (the "source" column).
    """
    from netops.library import runbook_sources, source_of
    from netops.plain import print_table
    from netops.runbook.load import load_all

    s = settings(ctx)
    sources = runbook_sources(s.runbooks)
    books, errors = load_all([src.path for src in sources])
    rows = [(name, "yes" if books[name].disruptive else "",
             source_of(sources, books[name].source), _first_sentence(books[name].description))
            for name in sorted(books)]
    if as_json:
        sys.stdout.write(json.dumps({"runbooks": [
            dict(zip(("name", "disruptive", "source", "description"), row, strict=True))
            | {"disruptive": bool(row[1]), "path": str(books[row[0]].source)}
            for row in rows]}) + "\n")
    else:
        print_table(("runbook", "disruptive", "source", "description"), rows, title="runbooks")
    for e in errors:
        sys.stderr.write(f"invalid: {e}\n")
    return ExitCode.BAD_INPUT if errors else ExitCode.OK


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    head, dot, _ = flat.partition(". ")
    return head + ("." if dot else "")


@app.command("show")
@argument("runbook", RUNBOOK_HELP)
@click.pass_context
def show_cmd(ctx: click.Context, runbook: str) -> int:
    """Show a runbook: its description, params and steps (kind, where it runs, whether it
    mutates, its condition). Example: netops show fix-calico"""
    from netops.plain import print_table, safe

    s = settings(ctx)
    rb = s.find_runbook(runbook)
    sys.stdout.write(safe(f"{rb.name}{' (disruptive)' if rb.disruptive else ''}: "
                     f"{' '.join(rb.description.split())}\nsource: {rb.source}\n"))
    if rb.params:
        sys.stdout.write("\n")
        print_table(("param", "type", "default", "help"), [
            (name, str(p.type), "(required)" if p.required else
             ("***" if p.secret else repr(p.default)), p.help or "")
            for name, p in rb.params.items()], title="params")
    sys.stdout.write("\n")
    print_table(("phase", "id", "kind", "where", "mutates", "when"), [
        (phase, step.id, step.kind, step.on + (f" ({step.group})" if step.group else ""),
         "yes" if step.mutates else "", step.when or "")
        for phase in ("before", "steps", "verify", "after") for step in getattr(rb, phase)],
        title="steps")
    sys.stdout.flush()
    return ExitCode.OK


@app.command("validate")
@argument("files", required=False, many=True, type=path_type())
@click.pass_context
def validate_cmd(ctx: click.Context, files: tuple[Path, ...]) -> int:
    """Check runbooks: files, or library names (`netops validate fix-calico`), or all of the
    library if none is given; errors as file:line:col."""
    from netops.runbook.load import load_all, load_runbook

    s = settings(ctx)
    errors: list[UserError] = []
    count = 0
    if files:
        for f in files:
            try:
                if f.exists() or f.suffix in (".yaml", ".yml") or len(f.parts) > 1:
                    load_runbook(f)
                else:  # a name, found as `run` finds it
                    s.find_runbook(str(f))
                count += 1
            except UserError as bad:
                errors.append(bad)
    else:
        books, errors = load_all(s.runbook_dirs())
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
@argument("runbook", RUNBOOK_HELP, required=False)
@nodes_option
@click.option("--dry-run", is_flag=True,
              help="Run the read-only checks for real; show what would change.")
@click.option("--batch-size", metavar="<sizes>", help="Hosts per batch: 2, 25%, or canaries "
              "like 1,25%,100% (the last repeats).")
@click.option("--max-fail", metavar="<n|p%>", help="Failed hosts the whole run tolerates "
              "(N or P% of all targeted); one more halts it before the next batch.")
@click.option("--pause", metavar="<duration|ask>",
              help="Between batches: a duration (30s, 2m) or 'ask'.")
@click.option("--var", "-e", multiple=True, metavar="<name=value>",
              help="Runbook param NAME=VALUE (repeatable).")
@click.option("--forks", "-f", type=click.IntRange(min=1), metavar="<n>",
              help="Hosts at a time within a batch (default 50).")
@click.option("--timeout", type=Seconds(), metavar="<seconds>",
              help="Default per-step timeout in seconds (default 300).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (needed for a "
              "disruptive runbook when there is no terminal to ask on: cron, CI, the "
              "scheduler).")
@click.option("--resume", metavar="<run-id>", help="Finish an interrupted, halted, failed or "
              "crashed run (or the chain of runs that resumed it): every unfinished host, the "
              "same runbook version, params and rollout (--batch-size, --max-fail, --pause, "
              "--forks, --timeout override it, and say so); completed changes never run "
              "twice.")
@click.option("--unknown", metavar="<stop|retry|skip>", help="With --resume: what to do with "
              "a mutating step that was in flight when the run stopped and has no guard "
              "(sysctl, file and guarded shell steps re-check themselves): stop (default: fail "
              "its host before it), retry (run it again), skip (count it done).")
@click.option("--force", is_flag=True, help="Run a disruptive runbook outside the nodes' "
              "maintenance window (netops_maintenance_window); with --resume, also accept a "
              "runbook that changed since the run, or a --var that changes one of its params "
              "(said before it runs).")
@click.option("--until", metavar="<hh:mm|iso>", help="End of the maintenance window: HH:MM "
              "(next occurrence, local time) or an ISO date-time. No batch starts after it; "
              "the run halts, resumable.")
@click.option("--notify", multiple=True, metavar="<url>", envvar="NETOPS_NOTIFY",
              show_envvar=True, help="Webhook told when the run ends or halts (repeatable): "
              "a URL gets a JSON body, slack+URL a Slack one. Retried; never fails the run.")
@json_option
@click.pass_context
def run_cmd(ctx: click.Context, runbook: str | None, nodes: str | None, dry_run: bool,
            batch_size: str | None, max_fail: str | None, pause: str | None,
            var: tuple[str, ...], forks: int | None, timeout: float | None, yes: bool,
            resume: str | None, unknown: str | None, force: bool, until: str | None,
            notify: tuple[str, ...], as_json: bool) -> int:
    """Run a runbook on the selected nodes: rolling batches, health gates, a faithful dry run.

    Every run is journaled (`netops history`, `netops report RUN_ID`). Ctrl-C lets the steps
    in flight finish and marks the rest not-run (a second Ctrl-C abandons them); the run can
    then be finished with --resume RUN_ID.

    Examples:

    \b
      netops run check-ip-forward --nodes chick11,chick12 --dry-run
      netops run check-ip-forward --nodes workers --batch-size 1,25% --max-fail 1
      netops run --resume 3f2a9c1b7d0e
      netops run reset-flannel-subnet --nodes workers --batch-size 1 --until 06:00
    """
    s = settings(ctx)
    notify_to = _notify_targets(notify)
    deadline = _deadline(until)
    journal = open_journal(ctx)  # before any node is dialled: a bad journal exits 2 first,
    journal.check()  # as does one that cannot take a write (read-only, full, locked)
    prior = _prior(journal, resume, force, unknown)
    if prior is not None:
        runbook, nodes, dry_run = str(prior.runbook_path), prior.nodes, False
    what = _what(s, runbook, nodes, list(var), prior, force)
    if what.runbook.disruptive and not dry_run:
        _explicit(what.runbook, nodes, yes)
        deadline = _maintenance_window(s.console(), what.runbook, what.hosts, deadline, force)
    from netops.engine.prepare import Overrides, build_plan

    over = Overrides(batch_size, max_fail, pause, forks, timeout, deadline)
    plan = build_plan(what.runbook, what.inventory, what.hosts, what.vars, over,
                      dry_run=dry_run, resume=_resume_of(prior, unknown) if prior else None)
    asks = _asks(dry_run or yes)
    # Every input is checked; with no question to ask, the first hosts are dialled while
    # paramiko loads, and warmed (connected, no command yet) while the engine loads.
    connector = s.connector(what.hosts, dial=0 if asks else plan.forks)
    if not asks:
        connector.warm(what.hosts, plan.forks)
    if not _confirmed(s.console(), plan, prior, over, asks):
        return ExitCode.INTERRUPTED
    from netops.session import RunSession, run_record

    session = RunSession(plan, connector, journal,
                         run_record(plan, s.inventories or [s.inventory], nodes, batch_size),
                         takeover=frozenset(prior.chain) if prior else frozenset(),
                         finished=_finished_hosts(what.inventory, prior))
    return _execute(s, s.console(), session, as_json, notify_to)


@dataclass(frozen=True)
class _What:
    """What a run runs: the runbook, the inventory, the hosts and the --var pairs."""

    runbook: "Runbook"
    inventory: "Inventory"
    hosts: "tuple[Host, ...]"
    vars: list[str]


def _what(s: Settings, runbook: str | None, nodes: str | None, var: list[str],
          prior: "ResumeState | None", force: bool) -> _What:
    if runbook is None:
        raise UserError("which runbook? give its name, or --resume RUN_ID",
                        hint="`netops list` shows the library")
    rb = s.find_runbook(runbook)
    inventory = s.load_inventory()
    if prior is None:
        hosts = targets(inventory, nodes)
    else:
        from netops.resume import resume_vars

        var, changed = resume_vars(prior, rb, var, force)
        for line in changed:
            s.console().print(line, markup=False)
        hosts = _resumed_hosts(inventory, prior)
    return _What(rb, inventory, hosts, var)


def _deadline(until: str | None) -> float | None:
    """`--until` as Unix time (None without it)."""
    if not until:
        return None
    import time

    from netops.schedule import parse_until

    return parse_until(until, time.time())


def _confirmed(console: "Out", plan: "Plan", prior: "ResumeState | None",
               over: "Overrides", asks: bool) -> bool:
    """The plan in words (and what a resume keeps); False when the operator declines."""
    from netops.engine.prepare import describe

    for line in describe(plan):
        console.print(line, markup=False)
    if prior is not None:
        for line in _resume_notes(prior, over):
            console.print(line, markup=False)
    if asks and not click.confirm("Proceed?", default=False, err=True):
        console.print("not run: declined", markup=False)
        return False
    return True


def _prior(journal: "Journal", run_id: str | None, force: bool,
           unknown: str | None) -> "ResumeState | None":
    """The chain `--resume` names (None without it), its options checked."""
    if unknown not in (None, "stop", "retry", "skip"):
        raise UserError(f"--unknown {unknown!r}: expected stop, retry or skip")
    if run_id is None:
        if unknown is not None:
            raise UserError("--unknown applies to --resume only")
        return None
    from netops.resume import resume_state

    return resume_state(journal, run_id, force=force)


def _notify_targets(urls: "Sequence[str]") -> "Sequence[Target]":
    """The --notify targets, checked (the webhook module loads only when there are some)."""
    if not urls:
        return ()
    from netops.notify import parse_targets

    return parse_targets(urls)


def _explicit(rb: "Runbook", nodes: str | None, yes: bool) -> None:
    """A disruptive runbook runs only on targets named with --nodes (`--nodes all` for every
    host), and, with no terminal to ask on, only with --yes (the scheduler gives it)."""
    if nodes is None:
        raise UserError(f"runbook {rb.name!r} is disruptive: name its targets with --nodes",
                        hint="--nodes all runs it on every host of the inventory")
    if not yes and not _asks(False):
        raise UserError(f"runbook {rb.name!r} is disruptive and there is no terminal to ask "
                        "for confirmation", hint="give --yes to run it unattended")


def _asks(no_question: bool) -> bool:
    """Whether to ask before running: a terminal on both ends and no --yes or dry run."""
    from netops.plain import terminal

    return not no_question and terminal(sys.stderr) and sys.stdin.isatty()


def _resumed_hosts(inventory: "Inventory", prior: "ResumeState") -> "tuple[Host, ...]":
    """The unfinished hosts of the original plan, by name (not by re-reading --nodes, which
    may select other hosts today)."""
    from netops.errors import UnknownTarget

    if not prior.unfinished:
        raise UserError(f"run {prior.named} has no unfinished host")
    try:
        return tuple(inventory.host(name) for name in prior.unfinished)
    except (UnknownTarget, KeyError) as e:
        raise UserError(f"a host of run {prior.named} is no longer in the inventory: {e}",
                        hint="restore it, or start a new run") from None


def _finished_hosts(inventory: "Inventory", prior: "ResumeState | None") -> "tuple[Host, ...]":
    """The hosts of a resumed chain that need no more steps (still in the inventory)."""
    if prior is None:
        return ()
    names = [h for b in prior.batches for h in b if h not in prior.unfinished]
    return tuple(h for h in inventory.select(None) if h.name in names)


def _resume_of(prior: "ResumeState", unknown: str | None) -> "Resume":
    from netops.engine.prepare import Resume

    return Resume(prior.latest, prior.done, prior.unknown, unknown or "stop",
                  prior.batches, prior.rollout)


def _resume_notes(prior: "ResumeState", over: "Overrides") -> list[str]:
    """What the resume keeps, overrides and finds left in flight, said before it runs."""
    lines = [f"resuming run {prior.named}" + (f" (last resumed by {prior.latest})"
                                              if prior.latest != prior.named else "")
             + f": {len(prior.unfinished)} unfinished host(s), the original rollout"]
    kept = prior.rollout
    for option, given, was in (("--batch-size", over.batch_size, kept.get("batch_size")),
                               ("--max-fail", over.max_fail, kept.get("tolerance")),
                               ("--pause", over.pause, kept.get("pause")),
                               ("--forks", over.forks, kept.get("forks")),
                               ("--timeout", over.timeout, kept.get("timeout"))):
        if given is not None:
            lines.append(f"  {option} {given} overrides the original run's {was}")
    for host, steps in sorted(prior.unknown.items()):
        lines.append(f"  {host}: outcome unknown (in flight when a run stopped): "
                     f"{', '.join(sorted(steps))}")
    return lines


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


def _execute(s: Settings, console: "Out", session: "RunSession", as_json: bool,
             notify_to: "Sequence[Target]" = ()) -> int:
    import signal

    from netops.report import LiveView

    plan = session.plan
    interactive = console.is_terminal and sys.stdin.isatty()
    ask = (lambda q: click.confirm(q, default=True, err=True)) if interactive else None

    def interrupt(signum: int, frame: object) -> None:
        if session.stop.is_set():  # second Ctrl-C: abandon the steps in flight
            session.abandon()
            console.print("abandoned: the steps in flight are stopped with their SSH "
                          "sessions and journaled as unknown. Resume with: "
                          f"netops run --resume {plan.run_id}", markup=False)
            sys.stderr.flush()
            os._exit(ExitCode.INTERRUPTED)
        session.stop.set()
        console.print("[bold yellow]interrupted: finishing the steps in flight, marking the "
                      "rest not-run (Ctrl-C again to abandon them)[/]")

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        run = session.run([LiveView(console, verbose=s.verbose, secrets=plan.secrets)], ask)
    finally:
        signal.signal(signal.SIGINT, previous)
    _show_outcome(console, session, run)
    if as_json:
        sys.stdout.write(json.dumps(run.to_json()) + "\n")
    if notify_to:
        from netops.notify import notify_run

        notify_run(console, notify_to, run, session.record.nodes, session.plan.secrets)
    if session.journal_failed is not None:
        return ExitCode.FAILED
    return exit_code_for(run)


def _show_outcome(console: "Out", session: "RunSession", run: "RunResult") -> None:
    """The preview (dry run), the summary, and how to go on."""
    from netops.plain import escape
    from netops.report import plan_preview, show_summary
    from netops.transport.base import mask

    plan = session.plan
    if plan.dry_run:
        console.print(plan_preview(run, plan.secrets))
    show_summary(console, run, plan.secrets)
    if run.reason:
        console.print(f"[bold red]{escape(mask(run.reason, plan.secrets))}[/]")
    if session.journal_failed is not None:
        console.print(f"{session.journal_failed}: the run stopped between steps; what the "
                      "journal could not record is shown above, and a resume re-checks the "
                      f"steps left in flight. Resume with: netops run --resume {plan.run_id}",
                      markup=False)
    elif run.status in ("interrupted", "halted", "failed") and not plan.dry_run:
        console.print(f"run {plan.run_id}: {run.status}. Finish it with: "
                      f"netops run --resume {plan.run_id}", markup=False)
    else:
        console.print(f"run {plan.run_id}: {run.status} (netops report {plan.run_id})",
                      markup=False)
