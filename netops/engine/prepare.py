"""Turn a runbook, the selected hosts and the CLI's overrides into a `Plan` (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netops.engine.plan import (
    BatchSize,
    Plan,
    batches,
    parse_sizes,
    parse_tolerance,
    tolerance,
)
from netops.errors import UserError

if TYPE_CHECKING:
    from netops.inventory.model import Host, Inventory
    from netops.runbook.model import Runbook


@dataclass(frozen=True, slots=True)
class Overrides:
    """Rollout settings given on the command line (None: the runbook's default)."""

    batch_size: str | None = None
    max_fail: str | None = None
    pause: str | None = None
    forks: int = 50
    timeout: float | None = 300.0
    deadline: float | None = None
    """`--until`: Unix time after which no further batch starts."""


@dataclass(frozen=True, slots=True)
class Resume:
    """What an earlier run left to do: its id and, per host, the mutating steps it finished."""

    run_id: str
    done: Mapping[str, frozenset[str]]


def parse_vars(runbook: Runbook, pairs: Sequence[str]) -> tuple[dict[str, Any], frozenset[str]]:
    """`--var k=v` values coerced by each param's type, plus defaults; and the secret values."""
    given: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--var {pair!r}: expected NAME=VALUE")
        if key not in runbook.params:
            known = ", ".join(sorted(runbook.params)) or "none"
            raise UserError(f"--var {key}: runbook {runbook.name!r} has no such param",
                            hint=f"its params: {known}")
        given[key] = value
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    for name, param in runbook.params.items():
        if name in given:
            try:
                values[name] = param.coerce(given[name])
            except (ValueError, UserError) as e:
                raise UserError(f"--var {name}: {e}") from e
        elif param.required:
            raise UserError(f"runbook {runbook.name!r} needs --var {name}=...",
                            hint=param.help or f"a {param.type}")
        else:
            values[name] = param.default
        if param.secret and values[name] not in (None, ""):
            secrets.add(str(values[name]))
    return values, frozenset(secrets)


def _pause(text: str | None, default: float | str) -> float | str:
    if text is None:
        return default
    if text == "ask":
        return "ask"
    from netops.runbook.model import parse_duration

    return parse_duration(text)


def build_plan(runbook: Runbook, inventory: Inventory, hosts: Sequence[Host],
               pairs: Sequence[str], over: Overrides, *, dry_run: bool,
               resume: Resume | None = None) -> Plan:
    """Validate the inputs and decide everything a run will do, before touching a host."""
    params, secrets = parse_vars(runbook, pairs)
    rollout = runbook.rollout
    sizes: tuple[BatchSize, ...] = (parse_sizes(over.batch_size) if over.batch_size
                                    else tuple(rollout.batch_size))
    spec = parse_tolerance(over.max_fail) if over.max_fail is not None else rollout.max_fail
    groups = {s.group or "all" for s in (*runbook.before, *runbook.after) if s.on == "once"}
    once_hosts = {g: _group_hosts(inventory, g) for g in groups}
    return Plan(
        run_id=uuid.uuid4().hex[:12], runbook=runbook, batches=batches(list(hosts), sizes),
        params=params, secrets=secrets, dry_run=dry_run,
        tolerance=tolerance(spec, len(hosts)), pause=_pause(over.pause, rollout.pause),
        forks=over.forks, timeout=over.timeout, once_hosts=once_hosts,
        done=resume.done if resume else {}, resumed_from=resume.run_id if resume else None,
        deadline=over.deadline,
    )


def _group_hosts(inventory: Inventory, group: str) -> tuple[Host, ...]:
    """A missing group fails its once-steps ("no reachable host in group"), not the run."""
    from netops.errors import UnknownTarget

    try:
        return inventory.select(group)
    except UnknownTarget:
        return ()


def describe(plan: Plan) -> list[str]:
    """The plan in words, shown before anything runs."""
    lines = [f"runbook {plan.runbook.name}" + (" (dry run)" if plan.dry_run else "")
             + (" — DISRUPTIVE" if plan.runbook.disruptive else "")]
    for i, batch in enumerate(plan.batches, 1):
        lines.append(f"  batch {i}: {', '.join(h.name for h in batch)}")
    total = sum(len(b) for b in plan.batches)
    lines.append(f"  halts once more than {plan.tolerance} of {total} host(s) fail"
                 + (f"; pause {plan.pause}" + ("s" if not isinstance(plan.pause, str) else "")
                    + " between batches" if plan.pause else ""))
    if plan.deadline is not None:
        import time

        lines.append("  no batch starts after " + time.strftime(
            "%Y-%m-%d %H:%M:%S %Z", time.localtime(plan.deadline)) + " (then it halts, "
            "resumable)")
    return lines


