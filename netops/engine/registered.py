"""What a `register:`ed step exposes to later `when:` conditions and templates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netops.engine.result import FAILING, Status, StepResult


@dataclass(frozen=True, slots=True)
class Registered:
    """A step's result as templates see it: `{{ calico_silent.failed }}`."""

    status: str
    rc: int | None
    stdout: str
    stderr: str
    failed: bool
    """For a check: its expectation did not hold (a finding). Otherwise: the step failed."""
    changed: bool
    skipped: bool
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @classmethod
    def of(cls, result: StepResult, *,
           fields: Mapping[str, Any] | None = None) -> Registered:
        failed = result.finding or result.status in FAILING
        return cls(str(result.status), result.rc, result.stdout.strip(), result.stderr.strip(),
                   failed, result.changed or result.status is Status.WOULD_CHANGE,
                   result.status is Status.SKIPPED, fields or {})
