"""The dry-run guard: a transport wrapper that lets only read-only commands through.

A dry run must never mutate a node. Rather than trusting every step kind to remember the flag,
the engine hands steps this wrapper in a dry run, so a mutating command is refused by
construction (STYLE.md rule 8).
"""

from __future__ import annotations

from netops.transport.base import Command, Completed, Transport


class DryRunViolation(RuntimeError):
    """A step tried to run a mutating command during a dry run: a bug in that step kind."""


class ReadOnlyTransport:
    """Wraps a transport; raises `DryRunViolation` for any command not marked read-only."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.host = inner.host

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        if not cmd.readonly:
            raise DryRunViolation(f"dry run refused a mutating command on {self.host}: "
                                  f"{cmd.display}")
        return self.inner.run(cmd, timeout=timeout, stdin=stdin)

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        raise DryRunViolation(f"dry run refused to write {path} on {self.host}")

    def get(self, path: str) -> bytes:
        return self.inner.get(path)

    def close(self) -> None:
        self.inner.close()
