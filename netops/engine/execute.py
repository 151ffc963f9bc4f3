"""Execute a plan: batches in order, hosts of a batch in parallel, steps in order per host.

No barrier across hosts between steps: each host runs its steps and then its verify gate on its
own connection. Between batches the engine counts failed hosts against the run-wide tolerance,
pauses, and halts (every remaining host `not-run`) when the tolerance is exceeded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netops.engine.events import (
    BatchStarted,
    HostFinished,
    Notice,
    Observer,
    RunFinished,
    RunStarted,
)
from netops.engine.host import HostRunner, OnceRunner
from netops.engine.parallel import each
from netops.engine.plan import Plan
from netops.engine.registered import Registered
from netops.engine.result import (
    FAILING,
    HostResult,
    RunResult,
    RunStatus,
    Status,
    StepResult,
)
from netops.errors import TransportError
from netops.transport.base import Transport

if TYPE_CHECKING:
    from netops.inventory.model import Host


@dataclass
class World:
    """The outside world, injected: connections, time, the operator, the observers."""

    connect: Callable[[Host], Transport]
    controller: Callable[[], Transport]
    observer: Observer
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], float] = time.time
    """The wall clock, compared with `Plan.deadline`."""
    ask: Callable[[str], bool] | None = None
    """Asks the operator a yes/no question (for `--pause ask`); None without a terminal."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set on Ctrl-C: no new host or step starts."""
    blocked: Mapping[str, TransportError] = field(default_factory=dict)
    """Hosts whose node lock could not be taken, with the reason: they fail (or are
    unreachable) before their first step, never run unlocked."""


def execute(plan: Plan, world: World) -> RunResult:
    names = tuple(tuple(h.name for h in b) for b in plan.batches)
    world.observer.on_event(RunStarted(plan.run_id, plan.runbook.name, plan.dry_run, names))
    once = OnceRunner(plan, world)
    before = once.run_all(plan.runbook.before, "before")
    results: dict[str, HostResult] = {}
    reason = _failed_once(before, "before")
    failed = 0
    for index, batch in enumerate(plan.batches, 1):
        if index > 1 and not (reason or world.stop.is_set()):
            reason = _window_closed(plan, world, index)
        if reason or world.stop.is_set():
            _mark_not_run(results, batch, index)
            continue
        world.observer.on_event(BatchStarted(index, tuple(h.name for h in batch)))
        for r in _run_batch(plan, world, batch, index, once.controller.registered):
            results[r.host] = r
            failed += r.status in FAILING
        if failed > plan.tolerance and index < len(plan.batches):
            left = [h.name for b in plan.batches[index:] for h in b]
            reason = (f"halted after batch {index}: {failed} failed host(s), tolerance "
                      f"{plan.tolerance}" + (f"; not run: {', '.join(left)}" if left else ""))
            world.observer.on_event(Notice(reason, "error"))
        elif index < len(plan.batches) and not world.stop.is_set() and not _past(plan, world):
            _pause(plan, world, index)
            if world.stop.is_set():
                reason = "stopped by the operator between batches"
    after: tuple[StepResult, ...] = ()
    if not reason and not world.stop.is_set():
        after = once.run_all(plan.runbook.after, "after")
        reason = _failed_once(after, "after")
    run = RunResult(plan.run_id, plan.runbook.name, plan.dry_run,
                    _status(results, reason, world.stop.is_set()), names, _ordered(plan, results),
                    reason=reason, before=before, after=after)
    world.observer.on_event(RunFinished(run))
    return run


def _run_batch(plan: Plan, world: World, batch: tuple[Host, ...], index: int,
               before: Mapping[str, Registered]) -> list[HostResult]:
    def one(host: Host) -> HostResult:
        result = HostRunner(plan, world, host, index, before).run()
        world.observer.on_event(HostFinished(result))
        return result

    return each(batch, one, plan.forks)


def _past(plan: Plan, world: World) -> bool:
    return plan.deadline is not None and world.now() >= plan.deadline


def _window_closed(plan: Plan, world: World, index: int) -> str:
    """The halt reason when the deadline passed before batch `index` (1-based), else ""."""
    if not _past(plan, world):
        return ""
    assert plan.deadline is not None
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(plan.deadline))
    left = [h.name for b in plan.batches[index - 1:] for h in b]
    reason = (f"maintenance window closed at {when} before batch {index} (not run: "
              f"{', '.join(left)}); resume with --resume {plan.run_id}")
    world.observer.on_event(Notice(reason, "error"))
    return reason


def _pause(plan: Plan, world: World, index: int) -> None:
    if plan.dry_run:  # nothing changed, so there is nothing to watch settle
        if plan.pause:
            world.observer.on_event(Notice(f"dry run: no pause before batch {index + 1}"))
        return
    if plan.pause == "ask":
        if world.ask is None:
            world.observer.on_event(Notice("--pause ask needs a terminal; continuing", "warning"))
        elif not world.ask(f"Batch {index} done. Start batch {index + 1}?"):
            world.stop.set()
    elif isinstance(plan.pause, (int, float)) and plan.pause > 0:
        world.observer.on_event(Notice(f"pausing {plan.pause:g}s before batch {index + 1}"))
        world.sleep(float(plan.pause))


def _failed_once(results: tuple[StepResult, ...], phase: str) -> str:
    bad = [r for r in results if r.status in FAILING]
    return f"{phase} step {bad[0].id!r} failed: {bad[0].note or bad[0].stderr}" if bad else ""


def _mark_not_run(results: dict[str, HostResult], batch: tuple[Host, ...], index: int) -> None:
    for host in batch:
        results[host.name] = HostResult(host.name, index, Status.NOT_RUN)


def _status(results: Mapping[str, HostResult], reason: str, stopped: bool) -> RunStatus:
    if stopped:
        return RunStatus.INTERRUPTED
    if reason:
        return RunStatus.HALTED
    if any(r.status in FAILING for r in results.values()):
        return RunStatus.FAILED
    return RunStatus.OK


def _ordered(plan: Plan, results: Mapping[str, HostResult]) -> dict[str, HostResult]:
    return {h.name: results[h.name] for b in plan.batches for h in b}
