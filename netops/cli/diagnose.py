"""`netops diagnose`: the seed-000 hunt for "which chicks are broken" as one command."""

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from netops.cli.app import (
    app,
    json_option,
    nodes_option,
    path_type,
    settings,
    targets,
)
from netops.engine.result import ExitCode
from netops.errors import UserError

if TYPE_CHECKING:
    from netops.cli.app import Settings
    from netops.diagnose import Diagnosis
    from netops.plain import Out
    from netops.runbook.model import Runbook

MARK = {"ok": "[green]·[/]", "broken": "[bold red]✗[/]", "unknown": "[yellow]?[/]",
        "unreachable": "[magenta]![/]"}
PLAIN_MARK = {"ok": "·", "broken": "✗", "unknown": "?", "unreachable": "!"}
LEGEND = "· ok   ✗ broken (the runbook would fix it)   ? unknown   ! unreachable"


@app.command("diagnose")
@nodes_option
@click.option("--runbook", "-r", "only", multiple=True, metavar="<runbook>",
              help="Only these runbooks (repeatable).")
@click.option("--evidence", is_flag=True, help="Show why each finding was made.")
@click.option("--var", "-e", multiple=True, metavar="<runbook.name=value>",
              help="A param of one runbook, e.g. check-conntrack.sample_interval=2s "
              "(repeatable).")
@click.option("--forks", "-f", type=click.IntRange(min=1), default=50, metavar="<n>",
              help="Hosts at a time.")
@click.option("--metrics", type=path_type(), metavar="<file.prom>",
              help="Also write the matrix as Prometheus metrics in node_exporter's textfile "
              "format (atomically), e.g. into its --collector.textfile.directory.")
@click.option("--html", type=path_type(), metavar="<file.html>",
              help="Also write the matrix as one self-contained HTML page (a colour grid, the "
              "evidence on hover and expand).")
@json_option
@click.pass_context
def diagnose_cmd(ctx: click.Context, nodes: str | None, only: tuple[str, ...],
                 evidence: bool, var: tuple[str, ...], forks: int, metrics: Path | None,
                 html: Path | None, as_json: bool) -> int:
    """Run every runbook's read-only checks on every selected node: a node x runbook matrix.

    Never changes anything (each runbook runs as a dry run) and connects only to the
    selected nodes (a runbook's once-step runs on a selected host of its group, or the
    runbook is unknown). Exit 0 when every node is ok, 1 when something is broken, unknown
    or unreachable. With -v each check is printed as it finishes, with its output.

    Example: netops diagnose --nodes workers --evidence
    """
    from netops.diagnose import diagnose_fleet, plans
    from netops.engine.events import FanOut
    from netops.report import LiveView

    s = settings(ctx)
    console = s.console()
    books = _runbooks(s, list(only))
    names = [rb.name for rb in books]
    inventory = s.load_inventory()
    hosts = targets(inventory, nodes)
    _check_outputs(metrics=metrics, html=html)
    dry_runs = plans(books, inventory, hosts, forks=forks, pairs=_runbook_vars(list(var), names))
    # every input checked: dialled at once (diagnose never asks before it connects)
    connector = s.connector(hosts, dial=forks)
    console.print(f"diagnosing {len(hosts)} node(s) with {len(names)} runbook(s)",
                  markup=False)
    began, clock = time.time(), time.monotonic()
    live = [LiveView(console, verbose=True, live=False, batch_lines=False)] if s.verbose else []
    result = diagnose_fleet(dry_runs, hosts, connector, FanOut(live), forks=forks)
    down = [n for n, row in result.nodes.items()
            if any(f.status == "unreachable" for f in row.values())]
    if down:
        console.print(f"unreachable: {', '.join(down)}", markup=False)
    _write_files(console, result, began, time.monotonic() - clock, metrics, html, nodes)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
    else:
        _show(console, result, evidence)
    healthy = all(f.status == "ok" for row in result.nodes.values() for f in row.values())
    return ExitCode.OK if healthy else ExitCode.FAILED


def _runbooks(s: "Settings", only: list[str] | None) -> list["Runbook"]:
    """The runbooks of -r, or every one diagnose can run unattended; an invalid one is
    skipped with a line saying why."""
    from netops.diagnose import applicable
    from netops.runbook.load import load_all

    books, errors = load_all(s.runbook_dirs(), only or None)  # -r: load only those
    for e in errors:
        s.console().print(f"invalid runbook skipped: {e}", markup=False)
    names = only or sorted(n for n, rb in books.items() if applicable(rb))
    missing = [n for n in names if n not in books]
    if missing:
        raise UserError(f"no runbook named {missing[0]!r}", hint="`netops list` shows them")
    return [books[n] for n in names]


def _check_outputs(**files: Path | None) -> None:
    """--metrics and --html are written after every node has answered: a directory that is
    not there exits 2 before any node is connected to, not after."""
    for option, path in files.items():
        if path is not None and not path.parent.is_dir():
            raise UserError(f"--{option} {path}: no directory {path.parent}")


def _write_files(console: "Out", result: "Diagnosis", began: float, took: float,
                 metrics: Path | None, html: Path | None, nodes: str | None) -> None:
    """--metrics and --html."""
    if metrics is not None:
        from netops.metrics import write_textfile

        write_textfile(metrics, result, began, took)
        console.print(f"metrics written to {metrics}", markup=False)
    if html is not None:
        from netops.html_report import diagnose_html, write_page

        write_page(html, diagnose_html(result, began, took, nodes or "all"))
        console.print(f"HTML matrix written to {html}", markup=False)


def _show(console: "Out", result: "Diagnosis", evidence: bool) -> None:
    """Runbooks down, nodes across (node names are short, runbook ids are not); folded to one
    line per runbook when the nodes do not fit across the screen, or for a log."""
    nodes = list(result.nodes)
    width = max((len(c) for c in result.checks), default=7) + sum(len(n) + 1 for n in nodes)
    if width > console.width or not console.is_terminal:
        _show_by_runbook(console, result)
    else:
        from rich.table import Table

        table = Table(title="runbook x node", caption=LEGEND, box=None, pad_edge=False)
        table.add_column("runbook")
        for node in nodes:
            table.add_column(node, justify="center")
        for check in result.checks:
            table.add_row(check, *[MARK[result.nodes[n][check].status]
                                   if check in result.nodes[n] else "" for n in nodes])
        console.print(table)
    if evidence:
        for node, row in result.nodes.items():
            for check, f in row.items():
                if f.status != "ok" and f.evidence:
                    console.print(f"[bold]{node}[/] {check} ({f.status}):")
                    for line in f.evidence.splitlines():
                        console.print(f"    {line}", markup=False, highlight=False)
    for rb, broken in sorted(result.broken().items()):
        console.print(f"fix: netops run {rb} --nodes {','.join(broken)} --dry-run",
                      markup=False)


def _show_by_runbook(console: "Out", result: "Diagnosis") -> None:
    """One line per runbook: how many nodes are in each state, and which are not ok."""
    from netops.report import write_plain

    pad = max((len(c) for c in result.checks), default=0)
    lines = [f"runbook x node, {len(result.nodes)} node(s): {LEGEND}"]
    for check in result.checks:
        by: dict[str, list[str]] = {}
        for node, row in result.nodes.items():
            if check in row:
                by.setdefault(row[check].status, []).append(node)
        parts = [f"{PLAIN_MARK[status]} {status} {len(names)}"
                 + (f": {', '.join(names)}" if status != "ok" else "")
                 for status, names in sorted(by.items(), key=lambda kv: kv[0] != "ok")]
        lines.append(f"{check.ljust(pad)}  {'; '.join(parts)}")
    write_plain(console, lines)


def _runbook_vars(given: list[str], names: list[str]) -> dict[str, list[str]]:
    """`--var RUNBOOK.NAME=VALUE` pairs, by runbook (NAME=VALUE, as `run --var` takes)."""
    out: dict[str, list[str]] = {}
    for pair in given:
        target, dot, rest = pair.partition(".")
        if not dot or "=" not in rest or target not in names:
            raise UserError(f"--var {pair!r}: expected RUNBOOK.NAME=VALUE with one of the "
                            "runbooks diagnosed", hint=f"runbooks: {', '.join(names)}")
        out.setdefault(target, []).append(rest)
    return out
