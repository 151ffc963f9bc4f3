"""Shared helpers for lab tests: bring a lab up for a module, run the real CLI against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netops.lab import Lab
from netops.lab.verify import SNAPSHOT as SNAPSHOT  # a node's state, shared with lab verify
from netops.lab.verify import settled as settled  # two snapshots in a row agree
from netops.lab.verify import snapshot as snapshot
from tests.conftest import skip_unless_lab_possible

REPO = Path(__file__).resolve().parents[2]


def lab_for(tmp: Path, names: Sequence[str], k: int) -> Iterator[Lab]:
    """A lab with its own prefix and subnet (198.19.k.0/24), torn down afterwards."""
    skip_unless_lab_possible()
    lab = Lab(tmp / "lab", subnet=f"198.19.{k}.0/24", prefix=f"nt{k}")
    try:
        lab.up(list(names))
        yield lab
    finally:
        lab.down()


@dataclass
class Cli:
    """Runs `python -m netops` against a lab, with its own journal and state directory."""

    lab: Lab
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "NETOPS_INVENTORY": str(self.lab.inventory_path),
               "NETOPS_JOURNAL": str(self.home / "journal.db"),
               "XDG_STATE_HOME": str(self.home / "state"), "COLUMNS": "200"}
        env.pop("NETOPS_HOST_KEYS", None)
        env.update(extra)
        return env

    def __call__(self, *args: str, timeout: float = 120, **extra: str) -> Result:
        done = subprocess.run([sys.executable, "-m", "netops", *args], capture_output=True,
                              text=True, timeout=timeout, env=self.env(**extra), cwd=self.home)
        return Result(done.returncode, done.stdout, done.stderr)

    def popen(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "netops", *args], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.env(**extra), cwd=self.home)


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError:
            raise AssertionError(f"not JSON (rc {self.rc}):\n{self.stdout}\n{self.stderr}")\
                from None

    def statuses(self) -> dict[str, str]:
        return {h: v["status"] for h, v in self.json["hosts"].items()}

    def step_status(self, host: str, step: str) -> str:
        steps = self.json["hosts"][host]["steps"]
        return next(str(s["status"]) for s in steps if s["id"] == step)


VOLATILE = {"resourceVersion", "lastHeartbeatTime", "lastTransitionTime", "startTime",
            "startedAt", "finishedAt"}


def kube_snapshot(lab: Lab) -> dict[str, Any]:
    """The API stand-in's objects (cluster state) without what changes by itself over time."""
    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: clean(v) for k, v in node.items() if k not in VOLATILE}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node
    return {f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}":
            clean(o) for o in lab.kube_state()["objects"]}


def kubectl(lab: Lab, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real kubectl against the lab's API stand-in."""
    return lab.kubectl(*args, check=check)


# -- the runbook library tests (test_library*.py): chick1 healthy, chick2 broken --------------
LIBRARY_NODES = ["chick1", "chick2"]
LIBRARY_GOOD, LIBRARY_BAD = LIBRARY_NODES
FLAGGED = {LIBRARY_GOOD: "ok", LIBRARY_BAD: "broken"}
"""What diagnose says of a runbook's fault: on chick2 only."""
ALL_OK = {LIBRARY_GOOD: "ok", LIBRARY_BAD: "ok"}


def healthy_cli(lab: Lab, tmp_path: Path) -> Cli:
    """A CLI with its own journal; both nodes brought back to the healthy baseline first."""
    from netops.lab import faults

    for name in LIBRARY_NODES:
        faults.healthy(lab, name)
    return Cli(lab, tmp_path)


def sh(lab: Lab, node: str, command: str) -> str:
    """stdout of `command` run as root inside `node` (raises when it fails)."""
    return lab.node_exec(node, command).stdout


def run_all(cli: Cli, runbook: str, *args: str) -> Result:
    """`netops run RUNBOOK --nodes all --json ARGS`."""
    return cli("run", runbook, "--nodes", "all", "--json", *args, timeout=300)


def verdicts(r: Result, runbook: str) -> dict[str, str]:
    """node -> diagnose status of `runbook`, from `diagnose --json`."""
    return {n: row[runbook]["status"] for n, row in r.json["nodes"].items()}


def evidence(r: Result, runbook: str, node: str = LIBRARY_BAD) -> str:
    """What `diagnose --json` shows for `runbook` on `node`."""
    return str(r.json["nodes"][node][runbook]["evidence"])
