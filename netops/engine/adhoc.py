"""`netops exec`: one command on many hosts in parallel, one result per host."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from netops.engine.events import HostFinished, Observer, RunFinished, RunStarted, StepStarted
from netops.engine.outcome import step_failure
from netops.engine.parallel import each
from netops.engine.result import HostResult, RunResult, RunStatus, Status, StepResult
from netops.errors import TransportError
from netops.transport.base import Command, Transport

if TYPE_CHECKING:
    from netops.inventory.model import Host


def run_adhoc(
    hosts: Sequence[Host],
    connect: Callable[[Host], Transport],
    cmd: Command,
    *,
    timeout: float | None,
    forks: int,
    observer: Observer,
) -> RunResult:
    """Run `cmd` on every host (at most `forks` at a time); never raises for a host's failure."""
    run_id = uuid.uuid4().hex[:12]
    names = tuple(h.name for h in hosts)
    observer.on_event(RunStarted(run_id, "exec", False, (names,)))

    def one(host: Host) -> HostResult:
        observer.on_event(StepStarted(host.name, "exec", cmd.display))
        transport = connect(host)
        try:
            step = _exec(transport, cmd, timeout)
        finally:
            transport.close()
        result = HostResult(host.name, 1, step.status, (step,))
        observer.on_event(HostFinished(result))
        return result

    results = each(hosts, one, forks)
    failed = any(r.status is not Status.OK for r in results)
    run = RunResult(run_id, "exec", False, RunStatus.FAILED if failed else RunStatus.OK,
                    (names,), {r.host: r for r in results})
    observer.on_event(RunFinished(run))
    return run


def _exec(transport: Transport, cmd: Command, timeout: float | None) -> StepResult:
    try:
        done = transport.run(cmd, timeout=timeout)
    except TransportError as e:
        return step_failure("exec", cmd.display, cmd.display, e)
    status = Status.OK if done.ok else Status.FAILED
    return StepResult("exec", cmd.display, status, rc=done.rc, command=cmd.display,
                      stdout=done.stdout, stderr=done.stderr, duration_s=done.duration_s,
                      truncated=bool(done.truncated))
