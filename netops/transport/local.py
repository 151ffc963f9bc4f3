"""Local transport: commands on the controller (kubectl, etcdctl, `local` steps).

Same contract and result type as the SSH transport, so steps do not care where they run.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from netops.errors import TimedOut, TransportError
from netops.transport.base import Command, Completed


class LocalTransport:
    """Runs commands with `sh -c` on this machine, each in its own process group."""

    def __init__(self, name: str = "controller") -> None:
        self.host = name

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        started = time.monotonic()
        proc = subprocess.Popen(
            ["/bin/sh", "-c", cmd.text], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            # Kill the whole group: a hung pipeline must not leave orphans behind.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise TimedOut(self.host, f"{cmd.display!r} ran longer than {timeout:g}s "
                                      "and was killed") from None
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        return Completed(rc=proc.returncode, stdout=out.decode("utf-8", "replace"),
                         stderr=err.decode("utf-8", "replace"),
                         duration_s=time.monotonic() - started)

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
