"""Tuned paramiko: TCP_NODELAY socket handed over with sock=, known_hosts and the key parsed
once with each client given only its host's entry, commands on raw channels.

    python3 paramiko_tuned.py LAB_DIR
"""

from __future__ import annotations

import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
from commands import COMMANDS


def main() -> None:
    lab = Path(sys.argv[1])
    addresses = list(json.loads((lab / "state.json").read_text())["addresses"].values())
    known = paramiko.HostKeys(str(lab / "known_hosts"))
    key = paramiko.Ed25519Key.from_private_key_file(str(lab / "id_ed25519"))

    def one(address: str) -> int:
        sock = socket.create_connection((address, 22), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = paramiko.SSHClient()
        entry = known.lookup(address)
        for kind, k in (entry or {}).items():
            client.get_host_keys().add(address, kind, k)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(address, username="root", pkey=key, sock=sock, look_for_keys=False,
                       allow_agent=False)
        transport = client.get_transport()
        assert transport is not None
        failures = 0
        for cmd in COMMANDS:
            chan = transport.open_session()
            chan.exec_command(cmd)
            while chan.recv(65536):
                pass
            failures += chan.recv_exit_status() != 0
            chan.close()
        client.close()
        return failures

    with ThreadPoolExecutor(max_workers=len(addresses)) as pool:
        failed = sum(pool.map(one, addresses))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
