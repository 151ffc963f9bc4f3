"""A journaled run as an incident timeline in Markdown (`netops report RUN_ID`).

Written the way seed 000 tells its story: what was found, what was done where and in what
order, and how each node ended up.

The journal holds what nodes printed as they printed it (secrets already masked when it was
written); the Markdown is made terminal-`safe` as a whole, since it is often read with `cat`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from netops.plain import safe

if TYPE_CHECKING:
    from netops.journal import HostRow, RunRow, StepRow

def _clock(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "—"


def _hms(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "--:--:--"


def _one_line(text: str | None, width: int = 100) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _status(step: StepRow) -> str:
    """A step's status; an error says its exit code when that tells why (127: the command was
    not found, 126, a signal), since the command column shows the command, not the note."""
    rc = step.rc
    if step.status in ("failed", "unknown") and rc is not None and (rc in (126, 127)
                                                                    or rc > 128 or rc < 0):
        from netops.transport.base import unexpected_rc

        return f"{step.status}: {unexpected_rc(rc) or f'rc {rc}'}"
    return step.status


def markdown(run: RunRow, hosts: Sequence[HostRow], steps: Sequence[StepRow]) -> str:
    took = (run.finished - run.started) if run.finished else None
    kind = "dry run" if run.dry_run else "run"
    out = [f"# {run.runbook} {kind} {run.run_id}: {run.status}", ""]
    out += [
        f"- **Who**: {run.operator} on {run.controller}",
        f"- **When**: {_clock(run.started)} to {_clock(run.finished)}"
        + (f" ({took:.1f}s)" if took is not None else " (did not finish)"),
        f"- **Targets**: `{run.nodes or 'all'}` from {run.inventory}",
        f"- **Runbook**: {run.runbook_path} (sha256 {run.runbook_sha256[:12]})",
    ]
    if run.params:
        out.append("- **Params**: " + ", ".join(f"`{k}={v}`" for k, v in run.params.items()))
    if run.resumed_from:
        out.append(f"- **Resumes**: run {run.resumed_from}")
    if run.reason:
        out.append(f"- **Halted**: {run.reason}")
    out += ["", "## Plan", ""]
    out += [f"{i}. {', '.join(batch)}" for i, batch in enumerate(run.batches, 1)] or ["—"]
    found = [s for s in steps if s.is_finding]
    out += ["", "## What was found", ""]
    out += [f"- **{s.host}** `{s.step_id}` ({s.status}): {_one_line(s.note)}"
            for s in found] or ["Nothing: every check held."]
    out += ["", "## What was done, in order", "",
            "| time | host | step | status | command / note |", "|---|---|---|---|---|"]
    for s in steps:
        what = s.command or s.note
        out.append(f"| {_hms(s.started)} | {s.host} | {s.step_id} | {_status(s)} | "
                   f"{_cell(_one_line(what, 80))} |")
    out += ["", "## How each node ended", "", "| host | batch | status | changed steps |",
            "|---|---|---|---|"]
    for h in hosts:
        changed = [s.step_id for s in steps if s.host == h.host and s.changed]
        out.append(f"| {h.host} | {h.batch} | {h.status} | {', '.join(changed) or '—'} |")
    return safe("\n".join(out + _failures(steps)).rstrip() + "\n")


def _failures(steps: Sequence[StepRow]) -> list[str]:
    failed = [s for s in steps if s.status in ("failed", "unreachable")]
    out = ["", "## Failures", ""] if failed else []
    for s in failed:
        out += [f"### {s.host}: {s.step_id}", "", _one_line(s.note, 300) or "(no note)"]
        if s.stderr.strip():
            out += ["", "```", s.stderr.strip()[-2000:], "```"]
        out.append("")
    return out
