"""Fabric ThreadingGroup: the 5 commands, group by group, host keys checked.

    python3 fabric_bench.py LAB_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import paramiko
from commands import COMMANDS
from fabric import Config, ThreadingGroup


def main() -> None:
    lab = Path(sys.argv[1])
    addresses = list(json.loads((lab / "state.json").read_text())["addresses"].values())
    config = Config(overrides={"load_ssh_configs": False})
    group = ThreadingGroup(*addresses, user="root", config=config,
                           connect_kwargs={"key_filename": str(lab / "id_ed25519"),
                                           "look_for_keys": False, "allow_agent": False})
    for conn in group:  # Fabric accepts every key by default; keep checking on
        conn.client.load_host_keys(str(lab / "known_hosts"))
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    for cmd in COMMANDS:
        group.run(cmd, hide=True)
    group.close()


if __name__ == "__main__":
    main()
