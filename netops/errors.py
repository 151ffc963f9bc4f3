"""The netops error tree.

`UserError` and its children are expected errors caused by input (exit 2): they print as one
line, naming the file, line and column where that is known. `TransportError` and its children
describe why a host could not be reached or a command could not complete; the engine turns them
into per-host results, never into a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """A position in a user's file (1-based line and column)."""

    path: Path
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class NetopsError(Exception):
    """Base of every error netops raises on purpose."""


class UserError(NetopsError):
    """Bad input (usage, runbook, inventory, unknown node): exit 2, nothing was touched."""

    def __init__(self, message: str, span: SourceSpan | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        tail = f"\n  hint: {self.hint}" if self.hint else ""
        return f"{where}{self.message}{tail}"


class LoadError(UserError):
    """A file could not be parsed or did not match the expected shape."""


class UnknownTarget(UserError):
    """A --nodes pattern named a host or group that the inventory does not have."""

    def __init__(self, name: str, close_matches: tuple[str, ...] = ()) -> None:
        hint = f"did you mean: {', '.join(close_matches)}?" if close_matches else (
            "run `netops inventory` to see the hosts and groups"
        )
        super().__init__(f"unknown host or group {name!r}", hint=hint)
        self.name = name
        self.close_matches = close_matches


class TransportError(NetopsError):
    """A host could not be reached, or a command on it could not complete."""

    reason = "transport error"

    def __init__(self, host: str, detail: str = "") -> None:
        super().__init__(f"{host}: {self.reason}" + (f": {detail}" if detail else ""))
        self.host = host
        self.detail = detail


class Unreachable(TransportError):
    """TCP connect failed, was refused or timed out, or the name did not resolve."""

    reason = "unreachable"


class AuthFailed(TransportError):
    """The server refused every key we offered."""

    reason = "authentication failed"


class HostKeyRejected(TransportError):
    """The host key is unknown (strict mode) or differs from the recorded one."""

    reason = "host key rejected"


class ConnectionLost(TransportError):
    """An established connection dropped; the command's outcome on the node is unknown."""

    reason = "connection lost"


class TimedOut(TransportError):
    """A command ran longer than its timeout and was killed."""

    reason = "timed out"


class JournalError(NetopsError):
    """The journal could not be read or written (full disk, locked, corrupt, server gone)."""

    def __init__(self, where: str, action: str, cause: BaseException) -> None:
        super().__init__(f"journal {where}: {action} failed: {cause}")
        self.where = where
