"""Pure planning: the `Plan` of a run, its rolling batches and its failure tolerance.

Light on purpose (no engine import): the CLI builds and checks a plan before it connects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from netops.errors import UserError

if TYPE_CHECKING:
    from netops.inventory.model import Host
    from netops.runbook.model import Runbook

T = TypeVar("T")
BatchSize = int | str


def parse_sizes(text: str) -> tuple[BatchSize, ...]:
    """`--batch-size 1,25%,100%` -> (1, "25%", "100%"); validates each entry."""
    sizes: list[BatchSize] = []
    for part in (p.strip() for p in text.split(",")):
        sizes.append(part if part.endswith("%") else _count(part, "--batch-size"))
        resolve_size(sizes[-1], 100)
    return tuple(sizes)


def _count(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{what}: {text!r} is neither a count nor a percentage like 25%") \
            from None
    if value < 0:
        raise UserError(f"{what}: {value} is negative")
    return value


def resolve_size(size: BatchSize, total: int) -> int:
    """A batch size as a host count: percentages of `total` round down, but never below 1."""
    if isinstance(size, int):
        if size < 1:
            raise UserError(f"batch size must be at least 1, got {size}")
        return size
    try:
        pct = float(size.rstrip("%"))
    except ValueError:
        raise UserError(f"batch size {size!r} is not a percentage like 25%") from None
    if not 0 < pct <= 100:
        raise UserError(f"batch size {size!r} must be between 0% and 100%")
    return max(1, int(total * pct / 100))


def batches(items: Sequence[T], sizes: Sequence[BatchSize]) -> tuple[tuple[T, ...], ...]:
    """Split `items` into rolling batches; the last size repeats until every item is placed.

    `sizes=(1, "25%", "100%")` over 8 hosts gives batches of 1, 2 and 5: a canary first.
    """
    sizes = tuple(sizes) or ("100%",)
    out: list[tuple[T, ...]] = []
    i = 0
    while i < len(items):
        size = resolve_size(sizes[min(len(out), len(sizes) - 1)], len(items))
        out.append(tuple(items[i:i + size]))
        i += size
    return tuple(out)


def parse_tolerance(text: str) -> int | str:
    """`--max-fail 2` or `--max-fail 10%`."""
    if text.strip().endswith("%"):
        tolerance(text.strip(), 100)
        return text.strip()
    return _count(text.strip(), "--max-fail")


def tolerance(spec: int | str, total: int) -> int:
    """How many failed hosts the whole run tolerates before it halts.

    Over the whole run, not per batch; percentages are of all targeted hosts, rounded down.
    Unlike Ansible's `max_fail_percentage` there is no must-exceed rule: `0` halts after the
    first batch with a failure, and `1` tolerates exactly one failed host.
    """
    if isinstance(spec, int):
        return spec
    try:
        pct = float(spec.rstrip("%"))
    except ValueError:
        raise UserError(f"--max-fail {spec!r} is not a count or a percentage") from None
    if not 0 <= pct <= 100:
        raise UserError(f"--max-fail {spec!r} must be between 0% and 100%")
    return int(total * pct / 100)


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything decided before any host is touched."""

    run_id: str
    runbook: Runbook
    batches: tuple[tuple[Host, ...], ...]
    params: Mapping[str, Any]
    secrets: frozenset[str]
    dry_run: bool
    tolerance: int
    """Failed hosts the whole run tolerates; one more halts it before the next batch."""
    pause: float | str
    """Seconds between batches, or "ask" to wait for the operator."""
    forks: int = 50
    timeout: float | None = 300.0
    once_hosts: Mapping[str, tuple[Host, ...]] = field(default_factory=dict)
    """For `on: once` steps: the candidate hosts of each group, in inventory order."""
    done: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """When resuming: per host, the mutating steps an earlier run already completed."""
    unknown: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """When resuming: per host, the mutating steps an earlier run left in flight (their
    outcome unknown). Without a guard they are not run again unless `on_unknown` says so."""
    on_unknown: str = "stop"
    """What a resume does with an unknown, unguarded step: stop (fail the host before it),
    retry (run it again) or skip (count it done)."""
    resumed_from: str | None = None
    deadline: float | None = None
    """Unix time (the end of a maintenance window) after which no further batch starts: the
    run halts, resumable, with the remaining hosts `not-run`."""
