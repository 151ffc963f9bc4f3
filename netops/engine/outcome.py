"""How transport failures become step outcomes (shared by exec and the runbook engine)."""

from __future__ import annotations

from netops.engine.result import Status, StepResult
from netops.errors import (
    AuthFailed,
    ConnectionLost,
    HostKeyRejected,
    TransportError,
    Unreachable,
)

NEVER_CONNECTED = (Unreachable, AuthFailed, HostKeyRejected)
"""Errors that mean the host was never reached: nothing ran on it."""


def step_failure(step_id: str, name: str, command: str | None, error: TransportError,
                 *, mutating: bool = False) -> StepResult:
    """The result of a step that a transport error stopped.

    A host that was never reached is `unreachable`; a connection that dropped or a command
    that timed out is `failed`, and for a mutating step the note says its effect is unknown.
    """
    if isinstance(error, NEVER_CONNECTED):
        return StepResult(step_id, name, Status.UNREACHABLE, command=command, note=str(error))
    note = str(error)
    if mutating and isinstance(error, ConnectionLost):
        # the command may have finished, or still be running, when the connection went:
        # a resume must not run it again blindly
        return StepResult(step_id, name, Status.UNKNOWN, command=command,
                          note=note + " (the change may or may not have been applied: "
                          "check the node)")
    if mutating:
        note += " (the change may or may not have been applied: check the node)"
    return StepResult(step_id, name, Status.FAILED, command=command, note=note)
