"""Closed vocabularies and result records of a run (the DESIGN.md `--json` contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any


class Status(StrEnum):
    """The outcome of one step, or of one host as a whole."""

    OK = "ok"
    CHANGED = "changed"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    WOULD_CHANGE = "would-change"
    NOT_RUN = "not-run"
    UNKNOWN = "unknown"
    """A mutating step whose connection dropped while it ran: it may or may not have
    applied its change. A resume does not run it again blindly."""


FAILING = frozenset({Status.FAILED, Status.UNREACHABLE, Status.UNKNOWN})


class RunStatus(StrEnum):
    """The outcome of a whole run."""

    OK = "ok"
    FAILED = "failed"
    HALTED = "halted"
    INTERRUPTED = "interrupted"


class ExitCode(IntEnum):
    """Process exit codes (DESIGN.md); only cli.py maps outcomes to these."""

    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    LOCKED = 3
    INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did on one host."""

    id: str
    name: str
    status: Status
    changed: bool = False
    rc: int | None = None
    command: str | None = None
    """The rendered command with secrets masked, or None when nothing was run."""
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    note: str = ""
    """A human explanation: the predicted change, why it was skipped, why it failed."""
    diff: str = ""
    """A unified diff of a predicted or applied file change."""
    finding: bool = False
    """A check whose expectation did not hold: what the node was found to be."""
    truncated: bool = False
    """Output was cut in the middle (each stream keeps its head and tail)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": str(self.status),
            "changed": self.changed,
            "rc": self.rc,
            "command": self.command,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration_s": round(self.duration_s, 3),
            "finding": self.finding,
            "note": self.note,
            "diff": self.diff,
            "truncated": self.truncated,
        }


@dataclass(frozen=True, slots=True)
class HostResult:
    """What a run did on one host."""

    host: str
    batch: int
    status: Status
    steps: tuple[StepResult, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "batch": self.batch,
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """The whole run: every targeted host, including those never reached (`not-run`)."""

    run_id: str
    runbook: str
    dry_run: bool
    status: RunStatus
    batches: tuple[tuple[str, ...], ...]
    hosts: Mapping[str, HostResult]
    reason: str = ""
    """Why the run halted or failed, for humans."""
    before: tuple[StepResult, ...] = ()
    """Once-steps run before the rolling part (on the controller or one host of a group)."""
    after: tuple[StepResult, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "runbook": self.runbook,
            "dry_run": self.dry_run,
            "status": str(self.status),
            "reason": self.reason,
            "batches": [list(b) for b in self.batches],
            "hosts": {name: h.to_json() for name, h in self.hosts.items()},
            "before": [s.to_json() for s in self.before],
            "after": [s.to_json() for s in self.after],
        }


def host_status(steps: tuple[StepResult, ...]) -> Status:
    """Fold step outcomes into one host outcome: the worst one wins."""
    order = [Status.UNREACHABLE, Status.FAILED, Status.NOT_RUN, Status.WOULD_CHANGE,
             Status.CHANGED, Status.OK, Status.SKIPPED]
    # a step of unknown outcome fails its host (the host is not finished)
    present = {Status.FAILED if s.status is Status.UNKNOWN else s.status for s in steps}
    for status in order:
        if status in present:
            return status if status is not Status.SKIPPED else Status.OK
    return Status.OK
