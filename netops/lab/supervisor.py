"""The lab's host-side daemon (`python -m netops.lab.supervisor DIR`).

A node cannot reboot itself: its `reboot` stand-in connects to DIR/ctl/reboot.sock (bound into
every node at /run/netops-lab/ctl). The supervisor identifies the node by the caller's pid
namespace (SO_PEERCRED), answers "ok", waits the grace period and runs `Lab.reboot(name)`, the
same code path as `netops lab reboot NODE`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("netops.lab.supervisor")
SOCKET = "ctl/reboot.sock"


def serve(directory: Path) -> None:
    from netops.lab.lab import Lab

    lab = Lab.load(directory)
    path = directory / SOCKET
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(128)
    pending: set[str] = set()
    lock = threading.Lock()

    def reboot(name: str) -> None:
        time.sleep(lab.defaults.reboot_grace_s)
        started = time.monotonic()
        try:
            lab.reboot(name)
            log.info("%s: rebooted in %.2fs", name, time.monotonic() - started)
        except Exception:
            log.exception("%s: reboot failed", name)
        finally:
            with lock:
                pending.discard(name)

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                    struct.calcsize("3i"))
            pid = struct.unpack("3i", creds)[0]
            try:
                request = conn.makefile().readline().strip()
            except OSError:
                return
            name = lab.node_of_pid(pid)
            if request != "reboot":
                reply = f"unknown request {request!r}"
            elif name is None:
                reply = "the caller is not a node of this lab"
            else:
                reply = "ok"
                with lock:
                    start = name not in pending
                    pending.add(name)
                if start:
                    log.info("%s: reboot requested by pid %d", name, pid)
                    threading.Thread(target=reboot, args=(name,), daemon=True).start()
            with contextlib.suppress(OSError):
                conn.sendall(reply.encode() + b"\n")

    log.info("listening on %s", path)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    serve(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
