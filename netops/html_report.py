"""HTML pages: `netops report RUN --format html` and `netops diagnose --html FILE`.

One self-contained page each (inline CSS and SVG, no script, nothing fetched), rendered with
Jinja2 from `netops/templates/` with autoescaping on: every string that came from a node or a
file (host names, output, notes, commands) is escaped, and made terminal-`safe` first so that a
control character shows as an escape instead of vanishing.

The run page draws the rollout as an SVG timeline: one lane per host, grouped by batch, each
step a bar from its start over its duration, coloured by status; each batch is a band, the time
between batches a hatched pause, and verify (health gate) steps are outlined and marked.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netops.plain import safe

if TYPE_CHECKING:
    from jinja2 import Environment

    from netops.diagnose import Diagnosis
    from netops.journal import HostRow, RunRow, StepRow

STATUS_COLOURS = {
    "ok": "#2e9e44", "changed": "#2f6fdf", "skipped": "#b0b7bf", "would-change": "#e8a33d",
    "failed": "#d7263d", "unreachable": "#a62ca6", "unknown": "#8d6e63", "not-run": "#d9dde1",
    "running": "#6c757d", "broken": "#d7263d", "halted": "#e8a33d", "interrupted": "#e8a33d",
    "crashed": "#d7263d",
}
DIAGNOSE_STATUSES = ("ok", "broken", "unknown", "unreachable")
OUTPUT_LIMIT = 4000
"""Characters of each stream shown per step (its tail: where errors are)."""
WIDTH = 1100
"""Width of the timeline's time axis, in SVG user units."""
LABEL = 170
LANE = 18
BATCH_GAP = 10


def _env() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("netops", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["clean"] = lambda v: safe("" if v is None else str(v))
    env.filters["bounded"] = bounded
    env.filters["clock"] = _clock
    env.filters["secs"] = _secs
    env.globals["colours"] = STATUS_COLOURS
    return env


def bounded(text: str | None, limit: int = OUTPUT_LIMIT) -> str:
    text = safe(text or "")
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]


def _clock(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts)) if ts else "—"


def _secs(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


def write_page(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (a temporary file beside it, then a rename)."""
    from netops.errors import UserError

    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        tmp.chmod(0o644)
        tmp.replace(path)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


# -- the run's timeline --------------------------------------------------------------------------
@dataclass
class Bar:
    x: float
    y: float
    w: float
    status: str
    host: str
    step: str
    tip: str
    gate: bool = False
    anchor: str = ""


@dataclass
class Band:
    x: float
    y: float
    w: float
    h: float
    label: str
    kind: str  # batch | pause


@dataclass
class Timeline:
    width: float
    height: float
    lanes: list[dict[str, Any]] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    axis_y: float = 0.0
    label_w: float = LABEL


def _gate_ids(run: RunRow) -> set[str]:
    """Ids of the runbook's verify steps, when the runbook file is still the one that ran."""
    import hashlib

    path = Path(run.runbook_path)
    try:
        if hashlib.sha256(path.read_bytes()).hexdigest() != run.runbook_sha256:
            return set()
        from netops.runbook.load import load_runbook

        return {s.id for s in load_runbook(path).verify}
    except Exception:  # the page is drawn without gate marks rather than not at all
        return set()


def _nice_step(span: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
                 7200, 14400, 43200, 86400):
        if span / step <= 10:
            return step
    return 86400.0


def _groups(hosts: Sequence[HostRow],
            steps: Sequence[StepRow]) -> list[tuple[str, int, list[str]]]:
    """(label, batch, hosts) in order: once-steps' hosts (not in any batch) first."""
    by_batch: dict[int, list[str]] = {}
    for h in sorted(hosts, key=lambda h: (h.batch or 0, h.host)):
        by_batch.setdefault(h.batch or 0, []).append(h.host)
    once = sorted({s.host for s in steps} - {h.host for h in hosts})
    groups = [(f"batch {b}", b, names) for b, names in sorted(by_batch.items())]
    return [("once", -1, once), *groups] if once else groups


def _lanes(tl: Timeline, hosts: Sequence[HostRow], steps: Sequence[StepRow],
           x: Callable[[float], float]) -> tuple[dict[str, float], float]:
    """A lane per host, a band per batch, a hatched band per pause between batches."""
    y = 8.0
    lane_y: dict[str, float] = {}
    status_of = {h.host: h.status for h in hosts}
    spans: list[tuple[int, float, float]] = []
    for label, b, names in _groups(hosts, steps):
        top = y
        for name in names:
            lane_y[name] = y
            tl.lanes.append({"host": name, "y": y, "status": status_of.get(name, ""),
                             "batch": label if name == names[0] else ""})
            y += LANE
        mine = [s for s in steps if s.host in names]
        rows = [h for h in hosts if h.host in names]
        starts = [s.started for s in mine] + [h.started for h in rows if h.started]
        stops = [s.started + (s.duration_s or 0) for s in mine] + \
            [h.finished for h in rows if h.finished]
        if starts:
            a, z = min(starts), max(stops or starts)
            tl.bands.append(Band(x(a), top - 3, max(2.0, x(z) - x(a)), y - top + 6,
                                 f"{label}: {_secs(z - a)}", "batch"))
            if b >= 0:
                spans.append((b, a, z))
        y += BATCH_GAP
    for (_, _, z), (b2, a2, _) in itertools.pairwise(spans):
        if x(a2) - x(z) >= 4:  # a gap the eye can see
            tl.bands.append(Band(x(z), 4, x(a2) - x(z), y - 8, f"pause {_secs(a2 - z)} "
                                 f"before batch {b2}", "pause"))
    return lane_y, y


def timeline(run: RunRow, hosts: Sequence[HostRow], steps: Sequence[StepRow],
             gates: set[str]) -> Timeline:
    t0 = run.started
    ends = [s.started + (s.duration_s or 0) for s in steps]
    ends += [h.finished for h in hosts if h.finished]
    t1 = max([run.finished or 0, *ends, t0 + 1.0])
    span = t1 - t0

    def x(t: float) -> float:
        return LABEL + max(0.0, t - t0) / span * WIDTH

    tl = Timeline(width=LABEL + WIDTH + 70, height=0)
    lane_y, y = _lanes(tl, hosts, steps, x)
    for i, s in enumerate(steps):
        dur = s.duration_s or 0
        gate = s.step_id in gates
        tip = (f"{s.host} · {s.step_id}{' (verify gate)' if gate else ''}: "
               f"{s.status}, {_secs(dur)} from +{_secs(s.started - t0)}")
        if s.command:
            tip += f"\n$ {safe(s.command)[:300]}"
        if s.note:
            tip += f"\n{safe(s.note)[:300]}"
        tl.bars.append(Bar(x(s.started), lane_y.get(s.host, 0) + 2,
                           max(3.0, dur / span * WIDTH), s.status, s.host, s.step_id, tip,
                           gate, f"step-{i}"))
    tl.axis_y = y
    step = _nice_step(span)
    t = 0.0
    while t <= span + 1e-9:
        tl.ticks.append((LABEL + t / span * WIDTH, f"+{_secs(t)}"))
        t += step
    tl.height = y + 26
    return tl


def run_html(run: RunRow, hosts: Sequence[HostRow], steps: Sequence[StepRow],
             resumed_by: Sequence[RunRow] = ()) -> str:
    """The page of one journaled run (rows as `Journal.run`, `.hosts`, `.steps` give them)."""
    gates = _gate_ids(run)
    tl = timeline(run, hosts, steps, gates)
    # the template's view of a step: its row with its anchor on the page and its gate mark
    shown = [dict(s.to_json(), anchor=f"step-{i}", gate=s.step_id in gates)
             for i, s in enumerate(steps)]
    findings = [v for s, v in zip(steps, shown, strict=True) if s.is_finding]
    per_host: dict[str, list[dict[str, Any]]] = {}
    for s, v in zip(steps, shown, strict=True):
        per_host.setdefault(s.host, []).append(v)
    counts: dict[str, int] = {}
    for h in hosts:
        counts[h.status] = counts.get(h.status, 0) + 1
    legend = [s for s in ("ok", "changed", "would-change", "skipped", "failed", "unreachable",
                          "unknown", "not-run") if any(b.status == s for b in tl.bars)]
    return _env().get_template("run.html.j2").render(
        run=run, meta=_meta(run, resumed_by), tl=tl, findings=findings, hosts=hosts,
        per_host=per_host, counts=sorted(counts.items()), legend=legend, gates=bool(gates),
        generated=_clock(time.time()), raw=json.dumps({"run_id": run.run_id}))


def _meta(run: RunRow, resumed_by: Sequence[RunRow]) -> list[tuple[str, str]]:
    """The run's facts, as the page's table lists them."""
    took = (run.finished - run.started) if run.finished else None
    meta = [
        ("status", run.status), ("runbook", run.runbook),
        ("kind", "dry run" if run.dry_run else "run"),
        ("operator", f"{run.operator} on {run.controller}"),
        ("started", _clock(run.started)),
        ("finished", _clock(run.finished) + (f" ({_secs(took)})" if took is not None
                                             else " (did not finish)")),
        ("targets", f"{run.nodes or 'all'} from {run.inventory}"),
        ("runbook file", f"{run.runbook_path} (sha256 {run.runbook_sha256[:12]})"),
        ("params", ", ".join(f"{k}={v}" for k, v in run.params.items()) or "—"),
        ("rollout", ", ".join(f"{k}={v}" for k, v in run.rollout.items()) or "—"),
        ("batches", " | ".join(", ".join(b) for b in run.batches) or "—"),
        ("command", " ".join(run.argv) or "—"),
    ]
    if run.resumed_from:
        meta.append(("resumes", run.resumed_from))
    if resumed_by:
        meta.append(("resumed by", ", ".join(f"{r.run_id} ({r.status})" for r in resumed_by)))
    if run.reason:
        meta.append(("reason", run.reason))
    return meta


# -- the diagnose matrix -------------------------------------------------------------------------
CELL = 26


def diagnose_html(result: Diagnosis, started: float, took: float, nodes: str = "all") -> str:
    """The node x runbook matrix as a colour grid (runbooks down, nodes across, as the
    terminal shows it); each cell's evidence on hover (SVG title) and expandable below."""
    names = list(result.nodes)
    checks = list(result.checks)
    label_w = max([len(c) for c in checks] + [8]) * 7.5 + 16
    head_h = max([len(n) for n in names] + [6]) * 7 + 16
    cells = []
    details = []
    counts = dict.fromkeys(DIAGNOSE_STATUSES, 0)
    for r, check in enumerate(checks):
        for c, node in enumerate(names):
            f = result.nodes[node].get(check)
            if f is None:
                continue
            counts[f.status] = counts.get(f.status, 0) + 1
            anchor = f"ev-{r}-{c}"
            tip = f"{node} \u00d7 {check}: {f.status}"
            if f.evidence:
                tip += "\n" + safe(f.evidence)[:600]
            cells.append({"x": label_w + c * CELL, "y": head_h + r * CELL, "status": f.status,
                          "tip": tip, "anchor": anchor if f.status != "ok" else "",
                          "node": node, "check": check})
            if f.status != "ok":
                details.append({"anchor": anchor, "node": node, "check": check,
                                "status": f.status, "evidence": f.evidence})
    grid = {"width": label_w + len(names) * CELL + 10,
            "height": head_h + len(checks) * CELL + 10, "label_w": label_w, "head_h": head_h,
            "cols": [{"x": label_w + c * CELL + CELL / 2, "name": n}
                     for c, n in enumerate(names)],
            "rows": [{"y": head_h + r * CELL + CELL / 2, "name": n}
                     for r, n in enumerate(checks)]}
    fixes = sorted(result.broken().items())
    return _env().get_template("diagnose.html.j2").render(
        grid=grid, cells=cells, cell=CELL, details=details, counts=counts, nodes=nodes,
        node_count=len(names), check_count=len(checks), started=_clock(started),
        took=_secs(took), fixes=fixes, generated=_clock(time.time()),
        statuses=DIAGNOSE_STATUSES)
