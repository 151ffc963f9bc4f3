"""asyncssh: one connection per host, 5 commands in order, all hosts concurrently.

    python3 asyncssh_bench.py LAB_DIR
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import asyncssh
from commands import COMMANDS


async def one(lab: Path, address: str) -> int:
    async with asyncssh.connect(address, username="root",
                                client_keys=[str(lab / "id_ed25519")],
                                known_hosts=str(lab / "known_hosts"),
                                kex_algs=["curve25519-sha256"]) as conn:
        failures = 0
        for cmd in COMMANDS:
            result = await conn.run(cmd)
            failures += result.exit_status != 0
        return failures


async def main() -> int:
    lab = Path(sys.argv[1])
    addresses = json.loads((lab / "state.json").read_text())["addresses"].values()
    results = await asyncio.gather(*(one(lab, a) for a in addresses))
    return 1 if sum(results) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
