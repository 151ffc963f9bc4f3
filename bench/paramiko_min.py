"""Minimal paramiko: one SSHClient per host, 5 exec_command round trips, a thread pool.

    python3 paramiko_min.py LAB_DIR
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
from commands import COMMANDS


def one(lab: Path, address: str) -> int:
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab / "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(address, username="root", key_filename=str(lab / "id_ed25519"),
                   look_for_keys=False, allow_agent=False)
    failures = 0
    for cmd in COMMANDS:
        _, out, _ = client.exec_command(cmd)
        out.read()
        failures += out.channel.recv_exit_status() != 0
    client.close()
    return failures


def main() -> None:
    lab = Path(sys.argv[1])
    addresses = json.loads((lab / "state.json").read_text())["addresses"].values()
    with ThreadPoolExecutor(max_workers=len(addresses)) as pool:
        failed = sum(pool.map(lambda a: one(lab, a), addresses))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
