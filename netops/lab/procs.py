"""Stopping the lab's own daemons safely: only a pid whose command line still names the lab."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from netops.lab.node import zombie_or_gone


def cmdline_has(pid: int, *needles: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return all(n.encode() in cmdline for n in needles)


def _reap(pid: int) -> None:
    """Reap it if it is our child, so no zombie is left; no-op otherwise."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, *needles: str, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after `timeout`, if `pid` is still the process we started."""
    if not cmdline_has(pid, *needles):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while not zombie_or_gone(pid):
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout
        time.sleep(0.02)
    _reap(pid)
