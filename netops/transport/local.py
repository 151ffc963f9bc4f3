"""Local transport: commands on the controller (kubectl, etcdctl, `local` steps).

Same contract and result type as the SSH transport, so steps do not care where they run.
"""

from __future__ import annotations

import os
import selectors
import shlex
import signal
import subprocess
import time
from pathlib import Path

from netops.errors import TimedOut, TransportError
from netops.transport.base import Command, Completed
from netops.transport.bounded import Bounded


class LocalTransport:
    """Runs commands with `sh -c` on this machine, each in its own process group; output is
    bounded as over SSH (`bounded.Bounded`: head and tail of each stream, the rest counted)."""

    def __init__(self, name: str = "controller") -> None:
        self.host = name

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        started = time.monotonic()
        proc = subprocess.Popen(
            ["/bin/sh", "-c", cmd.text],
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )
        out, err = Bounded(), Bounded()
        try:
            _collect(proc, stdin, out, err, None if timeout is None else started + timeout)
        except subprocess.TimeoutExpired:
            # Kill the whole group: a hung pipeline must not leave orphans behind.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise TimedOut(self.host, f"{cmd.display!r} ran longer than {timeout:g}s "
                                      "and was killed") from None
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        return Completed(rc=proc.returncode, stdout=out.text(), stderr=err.text(),
                         duration_s=time.monotonic() - started, truncated=out.cut + err.cut)

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        target = Path(path)
        tmp = target.with_name(f".{target.name}.netops.tmp")
        tmp.write_bytes(data)
        tmp.chmod(mode)
        tmp.replace(target)

    def get(self, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as e:
            raise TransportError(self.host, f"reading {shlex.quote(path)}: {e}") from e

    def close(self) -> None:
        """Nothing to close: every command is its own process."""


def _collect(proc: subprocess.Popen[bytes], stdin: bytes | None, out: Bounded, err: Bounded,
             deadline: float | None) -> None:
    """Feed `stdin` to `proc` and its two output streams into `out` and `err` as they come,
    until both close and it exits; `TimeoutExpired` past `deadline`."""
    assert proc.stdout is not None and proc.stderr is not None
    sinks = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    pending = memoryview(stdin or b"")
    with selectors.DefaultSelector() as sel:
        for fd in sinks:
            sel.register(fd, selectors.EVENT_READ)
        if proc.stdin is not None:
            if pending:
                os.set_blocking(proc.stdin.fileno(), False)
                sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
            else:
                proc.stdin.close()
        while sel.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            for key, _ in sel.select(wait):
                fd = key.fd
                if fd in sinks:
                    data = os.read(fd, 262144)
                    if data:
                        sinks[fd].feed(data)
                    else:
                        sel.unregister(fd)
                    continue
                assert proc.stdin is not None
                try:
                    pending = pending[os.write(fd, pending[:65536]):]
                except BrokenPipeError:
                    pending = pending[:0]
                if not pending:
                    sel.unregister(fd)
                    proc.stdin.close()
    wait = None if deadline is None else max(0.0, deadline - time.monotonic())
    proc.wait(wait)
