"""TCP connections to the nodes, opened while netops is still loading.

Before its first handshake netops loads paramiko (~80 ms) and the rest of the engine; for
each new TCP connection, sshd forks and re-executes itself and loads its host keys before it
sends its banner (~7 ms of the node's CPU). Started first, in a thread of its own, that work
overlaps netops' start-up instead of following it: on the 2-core lab at 100 nodes a run
took ~100 ms less. Nothing is sent on these sockets (no SSH banner): the SSH transport takes
one over when its host connects (`take`) and starts the handshake on it.

Only direct connections are dialled ahead (a ProxyJump or ProxyCommand host connects its own
way), and only the hosts the first handshakes go to: a socket left waiting for its handshake
holds one of sshd's pre-authentication slots (MaxStartups) and its LoginGraceTime runs. A
dialled connect that fails is the transport's first attempt (`take` raises what a connect of
its own would have); its retries connect on their own. This module imports no paramiko.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netops.transport.sshconfig import Resolved


class Dialer:
    """Non-blocking connects started ahead, handed out once each."""

    def __init__(self) -> None:
        self._socks: dict[tuple[str, int], socket.socket] = {}
        self._claimed: set[tuple[str, int]] = set()
        """Asked for already (dialled or not): the dialling thread skips these."""
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, targets: Iterable[Resolved]) -> None:
        """Connect to each direct target in a background thread; returns at once."""
        todo = [(t.address, t.port) for t in targets if not (t.proxy_jump or t.proxy_command)]

        def work() -> None:
            for address, port in todo:
                with contextlib.suppress(OSError):  # the transport will say it better
                    self._dial(address, port)

        self._thread = threading.Thread(target=work, name="netops-dial", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Until every host given to `start` has been dialled (or skipped)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _dial(self, address: str, port: int) -> None:
        with self._lock:
            if (address, port) in self._claimed or (address, port) in self._socks:
                return
        family: int
        where: Any
        found = _literal(address, port)
        if found is None:
            info = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
            family, where = info[0], info[4]
        else:
            family, where = found
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        if sock.connect_ex(where) not in (0, errno.EINPROGRESS):
            sock.close()
            return
        with self._lock:
            if (address, port) not in self._claimed:
                self._socks[(address, port)] = sock
                return
        sock.close()  # asked for meanwhile: the transport is connecting on its own

    def take(self, address: str, port: int, timeout: float) -> socket.socket | None:
        """The connected socket dialled to `address`:`port` (blocking again), or None when it
        was not dialled (yet): the caller connects on its own.

        Raises:
            OSError: the dialled connect failed or took longer than `timeout`: the caller's
                first attempt, as a connect of its own would have failed (its retries, if
                any, connect on their own).
        """
        with self._lock:
            self._claimed.add((address, port))
            sock = self._socks.pop((address, port), None)
        if sock is None:
            return None
        try:
            _, writable, _ = select.select([], [sock], [], timeout)
            if not writable:
                raise TimeoutError("timed out")
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
        except BaseException:
            sock.close()
            raise
        sock.settimeout(timeout)
        return sock

    def close(self) -> None:
        """Close the sockets no transport took."""
        with self._lock:
            left, self._socks = list(self._socks.values()), {}
        for sock in left:
            sock.close()


def _literal(address: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]] | None:
    """An IP address needs no resolver (a name would load the IDNA codec, ~4 ms)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, address)
        except OSError:
            continue
        return family, (address, port)
    return None

