"""The lab's one real etcd (Debian etcd-server 3.4), on the bridge address.

Clients and nodes reach it at http://<bridge>:2379. The v2 API is on (`--enable-v2`): flannel
before flannel-io/flannel#1562 read its config from the v2 keyspace (RUNBOOKS.md 1.7). Ports are
per bridge address, so several labs each get 2379/2380 without colliding.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

from netops.lab.model import LabError
from netops.lab.procs import terminate

CLIENT_PORT = 2379
PEER_PORT = 2380


def start(directory: Path, address: str, timeout: float = 20, *,
          enable_v2: bool = True) -> tuple[int, str]:
    """Start etcd; returns (pid, client endpoint) once it answers /health. `enable_v2=False`
    is etcd 3.4's own default: no v2 API (a fault for flannel <= 0.17, a v2 client)."""
    data = directory / "etcd"
    data.mkdir(exist_ok=True)
    data.chmod(0o700)
    client = f"http://{address}:{CLIENT_PORT}"
    peer = f"http://{address}:{PEER_PORT}"
    args = ["etcd", "--name", "netops-lab", "--data-dir", str(data),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"netops-lab={peer}", "--initial-cluster-state", "new",
            f"--enable-v2={'true' if enable_v2 else 'false'}", "--logger=zap",
            "--log-outputs=stderr"]
    with open(directory / "etcd.log", "ab") as log:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, cwd=str(directory))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(f"etcd exited with {proc.returncode}; see {directory / 'etcd.log'}")
        try:
            with urllib.request.urlopen(f"{client}/health", timeout=1) as r:
                if json.load(r).get("health") == "true":
                    return proc.pid, client
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    proc.kill()
    raise LabError(f"etcd did not become healthy in {timeout:g}s; see {directory / 'etcd.log'}")


def stop(pid: int, directory: Path) -> None:
    """Stop the lab's etcd (only if `pid` still is it)."""
    terminate(pid, "etcd", str(directory))
