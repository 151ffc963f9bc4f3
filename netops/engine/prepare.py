"""Turn a runbook, the selected hosts and the CLI's overrides into a `Plan` (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    forks: int | None = None
    """None: 50, or a resumed run's own."""
    timeout: float | None = None
    """None: 300 s, or a resumed run's own."""
    deadline: float | None = None
    """`--until`: Unix time after which no further batch starts."""


DEFAULT_FORKS = 50
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Resume:
    """What an earlier run (and the runs that resumed it) left to do."""

    run_id: str
    done: Mapping[str, frozenset[str]]
    """Per host (or ONCE): the mutating steps the chain completed; never run twice."""
    unknown: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per host: mutating steps left in flight, their outcome unknown."""
    on_unknown: str = "stop"
    batches: tuple[tuple[str, ...], ...] = ()
    """The original rollout's batches, by host name (empty: batch anew)."""
    rollout: Mapping[str, Any] = field(default_factory=dict)
    """The original run's tolerance, pause, forks and timeout."""


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
                if param.secret:  # the message quotes the value
                    raise UserError(f"--var {name}: not a valid {param.type}"
                                    + (" (not one of its choices)" if param.choices else ""))\
                        from None
                raise UserError(f"--var {name}: {e}") from e
        elif param.required:
            raise UserError(f"runbook {runbook.name!r} needs --var {name}=...",
                            hint=param.help or f"a {param.type}")
        else:
            values[name] = param.default
        if param.secret and values[name] not in (None, ""):
            secrets.add(str(values[name]))
    from netops.runbook.model import check_order

    why = check_order(runbook.params, values)
    if why:
        raise UserError(f"runbook {runbook.name!r}: {why}",
                        hint="contradictory timings are refused before anything runs")
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
    once_hosts = {g: _group_hosts(inventory, g, hosts) for g in groups}
    kept = resume.rollout if resume else {}
    layout = batches(list(hosts), sizes)
    if resume and resume.batches and not over.batch_size:
        layout = _kept_batches(resume.batches, hosts)
    limit = tolerance(spec, len(hosts))
    if over.max_fail is None and "tolerance" in kept:
        limit = int(kept["tolerance"])
    pause = _pause(over.pause, kept.get("pause", rollout.pause))
    forks = over.forks or int(kept.get("forks") or DEFAULT_FORKS)
    timeout = over.timeout or kept.get("timeout") or DEFAULT_TIMEOUT
    return Plan(
        run_id=uuid.uuid4().hex[:12], runbook=runbook, batches=layout,
        params=params, secrets=secrets, dry_run=dry_run, tolerance=limit, pause=pause,
        forks=forks, timeout=float(timeout), once_hosts=once_hosts,
        done=resume.done if resume else {}, unknown=resume.unknown if resume else {},
        on_unknown=resume.on_unknown if resume else "stop",
        resumed_from=resume.run_id if resume else None, deadline=over.deadline,
    )


def _kept_batches(original: tuple[tuple[str, ...], ...],
                  hosts: Sequence[Host]) -> tuple[tuple[Host, ...], ...]:
    """The original batches, each cut down to the hosts still to run (empty ones dropped)."""
    by_name = {h.name: h for h in hosts}
    kept = (tuple(by_name[n] for n in batch if n in by_name) for batch in original)
    return tuple(b for b in kept if b)


def rollout_record(plan: Plan, batch_size: str | None) -> dict[str, Any]:
    """What the journal keeps of a plan's rollout, for a resume to reuse."""
    sizes = batch_size or ",".join(str(s) for s in plan.runbook.rollout.batch_size)
    return {"batch_size": sizes, "tolerance": plan.tolerance, "pause": plan.pause,
            "forks": plan.forks, "timeout": plan.timeout}


def _group_hosts(inventory: Inventory, group: str, selected: Sequence[Host]) -> tuple[Host, ...]:
    """The candidates for a once-step of `group`: the group's hosts that the run targets
    first, then the rest of the group (a step that must run on an etcd host of a run on
    workers), each in inventory order. A missing group fails its once-steps, not the run."""
    from netops.errors import UnknownTarget

    try:
        members = inventory.select(group)
    except UnknownTarget:
        return ()
    names = {h.name for h in selected}
    return (*(h for h in members if h.name in names), *(h for h in members if h.name not in names))


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


