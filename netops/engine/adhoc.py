"""`netops exec`: one command on many hosts in parallel, one result per host.

Its events are a run's (one batch, one step `exec` per host), so the journal records an exec
like a run: `netops history` lists it and `netops report RUN_ID` shows it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from netops.engine.events import (
    BatchStarted,
    HostFinished,
    Observer,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from netops.engine.outcome import step_failure
from netops.engine.parallel import each
from netops.engine.result import HostResult, RunResult, RunStatus, Status, StepResult
from netops.errors import JournalError, TransportError
from netops.transport.base import Command, Transport

if TYPE_CHECKING:
    from netops.inventory.model import Host

STEP = "exec"
"""The id (and name) of an exec's one step."""


def run_adhoc(
    hosts: Sequence[Host],
    connect: Callable[[Host], Transport],
    cmd: Command,
    *,
    timeout: float | None,
    forks: int,
    observer: Observer,
    run_id: str | None = None,
) -> RunResult:
    """Run `cmd` on every host (at most `forks` at a time); never raises for a host's failure.
    A host whose step could not be recorded (the journal failing) is not run."""
    run_id = run_id or uuid.uuid4().hex[:12]
    names = tuple(h.name for h in hosts)
    observer.on_event(RunStarted(run_id, STEP, False, (names,)))
    observer.on_event(BatchStarted(1, names))

    def one(host: Host) -> HostResult:
        try:
            observer.on_event(StepStarted(host.name, STEP, cmd.display))
        except JournalError as e:
            step = StepResult(STEP, cmd.display, Status.NOT_RUN, command=cmd.display,
                              note=f"not run: {e}")
        else:
            transport = connect(host)
            try:
                step = _exec(transport, cmd, timeout)
            finally:
                transport.close()
            observer.on_event(StepFinished(host.name, step))
        result = HostResult(host.name, 1, step.status, (step,))
        observer.on_event(HostFinished(result))
        return result

    results = each(hosts, one, forks)
    failed = any(r.status is not Status.OK for r in results)
    run = RunResult(run_id, STEP, False, RunStatus.FAILED if failed else RunStatus.OK,
                    (names,), {r.host: r for r in results})
    observer.on_event(RunFinished(run))
    return run


def _exec(transport: Transport, cmd: Command, timeout: float | None) -> StepResult:
    try:
        done = transport.run(cmd, timeout=timeout)
    except TransportError as e:
        return step_failure(STEP, cmd.display, cmd.display, e)
    status = Status.OK if done.ok else Status.FAILED
    return StepResult(STEP, cmd.display, status, rc=done.rc, command=cmd.display,
                      stdout=done.stdout, stderr=done.stderr, duration_s=done.duration_s,
                      truncated=bool(done.truncated))
