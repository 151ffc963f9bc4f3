"""Record the node commands `netops diagnose` runs on each node, as one script per node for the
joined-OpenSSH lower bound of the diagnose benchmark.

    python3 diagnose_commands.py INVENTORY OUT_DIR [GLOBAL OPTIONS] [-- DIAGNOSE OPTIONS]

Runs `netops diagnose` in this process with the read-ahead transport recording every command a
step asks for (whether the answer came from the batch or from the node), then writes
OUT_DIR/NODE.sh: each command in its own subshell with stdin from /dev/null, one after the
other, which is what `ssh NODE sh -s < NODE.sh` then runs in one connection and one shell.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from netops.cli.main import main
from netops.engine import readahead
from netops.transport.base import Command, Completed

RECORDED: dict[str, list[str]] = defaultdict(list)


def recording(run: object) -> object:
    def wrapped(self: readahead.ReadAhead, cmd: Command, *, timeout: float | None = None,
                stdin: bytes | None = None) -> Completed:
        RECORDED[self.host].append(cmd.text)
        return run(self, cmd, timeout=timeout, stdin=stdin)  # type: ignore[operator]

    return wrapped


def write(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for host, cmds in RECORDED.items():
        (out / f"{host}.sh").write_text("".join(f"(\n{c}\n) </dev/null\n" for c in cmds))


if __name__ == "__main__":
    inventory, out = sys.argv[1], Path(sys.argv[2])
    readahead.ReadAhead.run = recording(readahead.ReadAhead.run)  # type: ignore[method-assign]
    with contextlib.suppress(SystemExit):
        rest = sys.argv[3:]
        cut = rest.index("--") if "--" in rest else len(rest)
        main(["-i", inventory, *rest[:cut], "diagnose", "--json", *rest[cut + 1:]])
    write(out)
    print(f"{sum(map(len, RECORDED.values()))} commands on {len(RECORDED)} nodes -> {out}",
          file=sys.stderr)
