"""Journal commands of the CLI: history and report."""

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from netops.cli.app import app, argument, json_option, open_journal, path_type
from netops.engine.result import ExitCode
from netops.errors import UserError

if TYPE_CHECKING:
    from netops.journal import Journal, RunRow


def parse_since(text: str) -> float:
    """`2h`, `3d` (ago) or an ISO date/time, as a Unix time."""
    from datetime import datetime

    from netops.runbook.model import parse_duration

    try:
        return time.time() - parse_duration(text)
    except UserError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UserError(f"--since {text!r}: expected a duration ago (2h, 3d) or a date "
                        "(2026-06-19 or 2026-06-19T23:00)") from None


@app.command("history")
@click.option("--node", metavar="<host>", help="Only runs that touched it.")
@click.option("--runbook", metavar="<runbook>", help="Only this runbook.")
@click.option("--since", metavar="<age|iso>", help="Only runs started since: 2h, 3d, or a date.")
@click.option("--limit", type=click.IntRange(min=1), default=20, metavar="<n>",
              help="At most this many.")
@json_option
@click.pass_context
def history_cmd(ctx: click.Context, node: str | None, runbook: str | None, since: str | None,
                limit: int, as_json: bool) -> int:
    """What netops did, newest first: "what did netops do to chick11 last night?"

    Example: netops history --node chick11 --since 1d
    """
    journal = open_journal(ctx)
    runs = journal.runs(node=node, runbook=runbook,
                        since=parse_since(since) if since else None, limit=limit)
    rows = [_summary(journal, r, node) for r in runs]
    if as_json:
        sys.stdout.write(json.dumps({"runs": rows}) + "\n")
        return ExitCode.OK
    from netops.plain import print_table

    print_table(("run", "started", "runbook", "nodes", "status", "hosts", "operator"), [
        (r["run_id"], time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started"])),
         r["runbook"] + (" (dry run)" if r["dry_run"] else ""), r["nodes"], r["status"],
         ", ".join(f"{n} {st}" for st, n in sorted(r["host_status"].items())),
         r["operator"]) for r in rows], title=f"runs in {journal.path}")
    if not rows:
        sys.stderr.write(f"no run in {journal.path} matches\n")
    return ExitCode.OK


def _summary(journal: "Journal", run: "RunRow", node: str | None) -> dict[str, Any]:
    """A run's line of `history` (its --json object): the run and its hosts' statuses."""
    hosts = journal.hosts(run.run_id)
    counts: dict[str, int] = {}
    for h in hosts:
        counts[h.status] = counts.get(h.status, 0) + 1
    out: dict[str, Any] = {
        "run_id": run.run_id, "runbook": run.runbook, "nodes": run.nodes, "status": run.status,
        "reason": run.reason, "dry_run": run.dry_run, "operator": run.operator,
        "controller": run.controller, "started": run.started, "finished": run.finished,
        "resumed_from": run.resumed_from, "host_status": counts}
    if node:
        out["node_status"] = next((h.status for h in hosts if h.host == node), None)
    return out


@app.command("report")
@argument("run_id", "A run id (or its first characters).")
@click.option("--format", "fmt", default="md", metavar="<md|json|html>",
              help="md (an incident timeline), json, or html (one self-contained page: the "
              "rollout on a time axis, findings, every step).")
@click.option("--output", "-o", type=path_type(), metavar="<file>",
              help="Write it to FILE, not stdout.")
@json_option
@click.pass_context
def report_cmd(ctx: click.Context, run_id: str, fmt: str, output: Path | None,
               as_json: bool) -> int:
    """A journaled run as an incident timeline (Markdown), as JSON (`--json` is
    `--format json`) or as an HTML page (`--format html -o run.html`)."""
    fmt = "json" if as_json else fmt
    from netops.timeline import markdown

    if fmt not in ("md", "json", "html"):
        raise UserError(f"--format {fmt!r}: expected md, json or html")
    journal = open_journal(ctx)
    run = journal.run(run_id)
    if run is None:
        raise UserError(f"no run {run_id!r} in {journal.path}", hint="`netops history` lists runs")
    hosts, steps = journal.hosts(run.run_id), journal.steps(run.run_id)
    if fmt == "json":
        text = json.dumps({"run": run.to_json(), "hosts": [h.to_json() for h in hosts],
                           "steps": [s.to_json() for s in steps]}) + "\n"
    elif fmt == "html":
        from netops.html_report import run_html

        text = run_html(run, hosts, steps, journal.resumed_by(run.run_id))
    else:
        text = markdown(run, hosts, steps)
    if output is None:
        sys.stdout.write(text)
    else:
        from netops.html_report import write_page

        write_page(output, text)
    return ExitCode.OK
