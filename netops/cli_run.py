"""Runbook commands of the CLI: list, show, validate, schema, run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from netops.cli import JsonOpt, NodesOpt, Settings, app, exit_code_for, preflight, settings
from netops.engine.result import ExitCode
from netops.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console

    from netops.engine.execute import Plan
    from netops.runbook.model import Runbook


def runbook_dirs(s: Settings) -> list[Path]:
    """--runbooks dirs, then ./runbooks, then the library shipped beside the package."""
    shipped = Path(__file__).resolve().parent.parent / "runbooks"
    dirs = [*s.runbooks, Path("runbooks"), shipped]
    return [d for i, d in enumerate(dirs) if d.is_dir() and d.resolve() not in
            {x.resolve() for x in dirs[:i]}]


def find(s: Settings, name: str) -> Runbook:
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
                      rb.description.strip().splitlines()[0] if rb.description else "")
    console = s.console()
    console.print(table)
    for e in errors:
        console.print(f"[red]invalid:[/] {e}", markup=True, highlight=False)
    return ExitCode.BAD_INPUT if errors else ExitCode.OK


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
            except UserError as e:
                errors.append(e)
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
    runbook: Annotated[str, typer.Argument(help="Runbook name (see `netops list`) or file.")],
    nodes: NodesOpt = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Run the read-only checks for real; show what would change.")] = False,
    batch_size: Annotated[str | None, typer.Option(
        "--batch-size", help="Hosts per batch: 2, 25%, or canaries like 1,25%,100% "
        "(the last repeats).")] = None,
    max_fail: Annotated[str | None, typer.Option(
        "--max-fail", help="Failed hosts the whole run tolerates (N or P% of all targeted); "
        "one more halts it before the next batch.")] = None,
    pause: Annotated[str | None, typer.Option(
        "--pause", help="Between batches: a duration (30s, 2m) or 'ask'.")] = None,
    var: Annotated[list[str] | None, typer.Option(
        "--var", "-e", help="Runbook param NAME=VALUE (repeatable).")] = None,
    forks: Annotated[int, typer.Option("--forks", "-f", min=1,
                                       help="Hosts at a time within a batch.")] = 50,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Default per-step timeout in seconds.")] = 300.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> int:
    """Run a runbook on the selected nodes: rolling batches, health gates, a faithful dry run.

    Examples:

      netops run check-ip-forward --nodes chick11,chick12 --dry-run

      netops run check-ip-forward --nodes workers --batch-size 1,25% --max-fail 1
    """
    from netops.engine.prepare import Overrides, build_plan, describe

    s = settings(ctx)
    console = s.console()
    rb = find(s, runbook)
    inventory = s.load_inventory()
    hosts = inventory.select(nodes)
    if not hosts:
        raise UserError(f"--nodes {nodes!r} selects no host")
    over = Overrides(batch_size, max_fail, pause, forks, timeout)
    plan = build_plan(rb, inventory, hosts, var or [], over, dry_run=dry_run)
    connector = s.connector(console)
    preflight(connector, hosts)
    for line in describe(plan):
        console.print(line, markup=False)
    if not (dry_run or yes) and console.is_terminal and sys.stdin.isatty() \
            and not typer.confirm("Proceed?", default=False, err=True):
        return ExitCode.INTERRUPTED
    return _execute(s, console, plan, connector, as_json)


def _execute(s: Settings, console: Console, plan: Plan, connector: object,
             as_json: bool) -> int:
    from netops.engine.execute import World, execute
    from netops.report import LiveView, plan_preview, summary_table
    from netops.transport.local import LocalTransport
    from netops.transport.ssh import SshConnector

    assert isinstance(connector, SshConnector)
    interactive = console.is_terminal and sys.stdin.isatty()
    world = World(
        connect=connector.transport, controller=LocalTransport,
        observer=LiveView(console, verbose=s.verbose),
        ask=(lambda q: typer.confirm(q, default=True, err=True)) if interactive else None,
    )
    try:
        run = execute(plan, world)
    except KeyboardInterrupt:
        world.stop.set()
        raise
    if plan.dry_run:
        console.print(plan_preview(run))
    console.print(summary_table(run))
    if run.reason:
        console.print(f"[bold red]{run.reason}[/]")
    if as_json:
        sys.stdout.write(json.dumps(run.to_json()) + "\n")
    return exit_code_for(run)
