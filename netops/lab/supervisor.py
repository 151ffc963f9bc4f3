"""The lab's host-side daemon (`python -m netops.lab.supervisor DIR`).

It also serves the lab's Kubernetes API stand-in (`netops.lab.kube`) once the lab is up, and
writes DIR/kubeconfig pointing at it.

A node cannot reboot itself: its `reboot` stand-in connects to DIR/ctl/reboot.sock (bound into
every node at /run/netops-lab/ctl). The supervisor identifies the node by the caller's pid
namespace (SO_PEERCRED), answers "ok", waits the grace period and runs `Lab.reboot(name)`, the
same code path as `netops lab reboot NODE`.
"""

from __future__ import annotations

import contextlib
import json
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

    threading.Thread(target=serve_kube, args=(directory,), daemon=True).start()
    log.info("listening on %s", path)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: netops-lab
  cluster:
    server: {url}
contexts:
- name: netops-lab
  context:
    cluster: netops-lab
    user: lab-admin
current-context: netops-lab
users:
- name: lab-admin
  user: {{}}
"""


def serve_kube(directory: Path) -> None:
    """Once the lab is up: seed the cluster, serve the API, write DIR/kubeconfig, sync."""
    from netops.lab.kube.cluster import Cluster, run_forever
    from netops.lab.kube.server import KubeServer
    from netops.lab.kube.store import Store
    from netops.lab.lab import Lab

    try:
        while True:
            state = json.loads((directory / "state.json").read_text())
            if state.get("status") == "up":
                break
            if not state.get("kube", True):
                return
            time.sleep(0.05)
        lab = Lab.load(directory)
        (directory / "kube").mkdir(exist_ok=True)
        cluster = Cluster(lab, Store(directory / "kube" / "state.json"))
        cluster.seed()
        server = KubeServer(cluster)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        tmp = directory / "kubeconfig.tmp"
        tmp.write_text(KUBECONFIG.format(url=server.url))
        tmp.chmod(0o600)
        tmp.replace(directory / "kubeconfig")
        log.info("kubernetes API stand-in on %s", server.url)
        run_forever(cluster, threading.Event())
    except Exception:
        log.exception("kubernetes API stand-in failed")


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    serve(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
