"""A transport kept open across several uses (locks, a run, the next runbook): `close` waits."""

from __future__ import annotations

from collections.abc import Sequence

from netops.transport.base import Command, Completed, Transport


class Kept:
    """Delegates to `inner`; `close()` is a no-op so the engine's per-host close keeps the
    connection for the caller, which closes `inner` itself at the end."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.host: str = getattr(inner, "host", "?")

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        return self.inner.run(cmd, timeout=timeout, stdin=stdin)

    def run_batch(self, cmds: Sequence[Command], *,
                  timeout: float | None = None) -> list[Completed | None]:
        batch = getattr(self.inner, "run_batch", None)
        if batch is None:
            return [None] * len(cmds)
        result: list[Completed | None] = batch(cmds, timeout=timeout)
        return result

    def reach(self) -> None:
        """Connect now if the transport below can (`SshTransport.reach`)."""
        reach = getattr(self.inner, "reach", None)
        if reach is not None:
            reach()

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        self.inner.put(data, path, mode=mode)

    def get(self, path: str) -> bytes:
        return self.inner.get(path)

    def reset(self) -> None:
        reset = getattr(self.inner, "reset", None)
        if reset is not None:
            reset()

    def close(self) -> None:
        pass
