"""The journal's rows as typed, frozen values: what every read of `Journal` returns.

Field names are the column names, so `to_json()` gives the same keys the database has (what
`netops report --format json` and `history --json` print). A value the database keeps as text
or an integer is converted here once: JSON columns to mappings and tuples, 0/1 to booleans,
a missing text to "", and a `running` run whose process is gone to `crashed`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FINDING_STATUSES = frozenset({"failed", "would-change", "unreachable", "unknown"})
"""Step statuses that are findings of a run whatever the step's own `finding` says."""


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int | None, controller: str) -> bool:
    if not pid or controller != socket.gethostname():
        return True  # another machine's run: assume it is still going
    return pid_alive(pid)


class _Row:
    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """The row's values keyed by column, ready for `json.dumps` (tuples read as lists).
        Shallow: `dataclasses.asdict` deep-copies, which cost half of a step's write."""
        cls = type(self)
        names = _COLUMNS.get(cls)
        if names is None:
            names = _COLUMNS[cls] = tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return {name: getattr(self, name) for name in names}


_COLUMNS: dict[type, tuple[str, ...]] = {}
"""Per row class: its field names, in column order."""


@dataclass(frozen=True, slots=True)
class RunRow(_Row):
    """One run (`runs`)."""

    run_id: str
    runbook: str
    runbook_path: str
    runbook_sha256: str
    inventory: str
    inventory_sha256: str
    nodes: str
    params: Mapping[str, Any]
    dry_run: bool
    status: str
    """As recorded, except a `running` run whose process is gone: `crashed`."""
    reason: str
    operator: str
    controller: str
    pid: int | None
    argv: tuple[str, ...]
    batches: tuple[tuple[str, ...], ...]
    resumed_from: str | None
    started: float
    finished: float | None
    rollout: Mapping[str, Any]

    @classmethod
    def from_db(cls, r: Mapping[str, Any]) -> RunRow:
        status = str(r["status"])
        if status == "running" and not _alive(r["pid"], r["controller"] or ""):
            status = "crashed"
        return cls(
            run_id=r["run_id"], runbook=r["runbook"], runbook_path=r["runbook_path"] or "",
            runbook_sha256=r["runbook_sha256"] or "", inventory=r["inventory"] or "",
            inventory_sha256=r["inventory_sha256"] or "", nodes=r["nodes"] or "",
            params=json.loads(r["params"] or "{}"), dry_run=bool(r["dry_run"]), status=status,
            reason=r["reason"] or "", operator=r["operator"] or "",
            controller=r["controller"] or "", pid=r["pid"],
            argv=tuple(json.loads(r["argv"] or "[]")),
            batches=tuple(tuple(b) for b in json.loads(r["batches"] or "[]")),
            resumed_from=r["resumed_from"], started=float(r["started"]),
            finished=_float(r["finished"]), rollout=json.loads(r.get("rollout") or "{}"))


@dataclass(frozen=True, slots=True)
class HostRow(_Row):
    """One host of a run (`hosts`)."""

    run_id: str
    host: str
    batch: int | None
    status: str
    started: float | None = None
    finished: float | None = None

    @classmethod
    def from_db(cls, r: Mapping[str, Any]) -> HostRow:
        return cls(r["run_id"], r["host"], r["batch"], r["status"], _float(r["started"]),
                   _float(r["finished"]))


@dataclass(frozen=True, slots=True)
class StepRow(_Row):
    """One step of one host of a run (`steps`); `seq` orders a host's rows."""

    run_id: str
    host: str
    seq: int
    step_id: str
    name: str = ""
    status: str = "running"
    changed: bool = False
    finding: bool = False
    rc: int | None = None
    command: str | None = None
    stdout: str = ""
    stderr: str = ""
    note: str = ""
    diff: str = ""
    started: float = 0.0
    duration_s: float | None = None

    @property
    def is_finding(self) -> bool:
        """What a report lists under findings: a check that found something, or a step
        that failed, would change, or has an unknown outcome."""
        return self.finding or self.status in FINDING_STATUSES

    @classmethod
    def from_db(cls, r: Mapping[str, Any]) -> StepRow:
        return cls(r["run_id"], r["host"], r["seq"], r["step_id"], r["name"] or "",
                   r["status"], bool(r["changed"]), bool(r["finding"]), r["rc"], r["command"],
                   r["stdout"] or "", r["stderr"] or "", r["note"] or "", r["diff"] or "",
                   float(r["started"]), _float(r["duration_s"]))


@dataclass(frozen=True, slots=True)
class FireRow(_Row):
    """What became of one fire time of a schedule (`fires`)."""

    schedule: str
    fire_time: float
    status: str
    run_id: str | None
    run_status: str | None
    exit_code: int | None
    window_end: float | None
    claimed_by: str
    controller: str
    pid: int | None
    note: str
    recorded: float
    finished: float | None

    @classmethod
    def from_db(cls, r: Mapping[str, Any]) -> FireRow:
        return cls(r["schedule"], float(r["fire_time"]), r["status"], r["run_id"],
                   r["run_status"], r["exit_code"], _float(r["window_end"]),
                   r["claimed_by"] or "", r["controller"] or "", r["pid"], r["note"] or "",
                   float(r["recorded"]), _float(r["finished"]))


@dataclass(frozen=True, slots=True)
class Chain:
    """A run and every run that resumed it (transitively), oldest first."""

    named: RunRow
    """The run that was asked for."""
    runs: tuple[RunRow, ...]

    @property
    def root(self) -> RunRow:
        return self.runs[0]

    @property
    def latest(self) -> RunRow:
        return self.runs[-1]


@dataclass(frozen=True, slots=True)
class ChainState:
    """What a chain of runs did, per host: the journal's half of a resume (`netops.resume`
    adds the runbook's half)."""

    chain: Chain
    host_status: Mapping[str, str]
    """Per host: its status in the latest run of the chain that ran it."""
    done: Mapping[str, frozenset[str]]
    """Per host: ids of the steps some run of the chain completed (ok or changed)."""
    unknown: Mapping[str, frozenset[str]]
    """Per host: ids of steps of unknown outcome that no run of the chain completed."""


def _float(v: Any) -> float | None:
    return None if v is None else float(v)
