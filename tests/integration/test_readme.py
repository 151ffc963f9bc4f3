"""The README is tested (issue 15): every command its ```sh blocks show runs here, in the
README's order, against a lab that the README's own `netops lab up` builds, through a `netops`
on PATH and a shell (pipes, `&&`, `>` as written). A README command this module does not know
fails the test, and so does a known one the README no longer shows.

Only what cannot run in a test is left out, each with its reason (`NOT_RUN`). The lab is built
in this test's directory, with its own interface prefix and subnet (k=191, 198.19.191.0/24),
appended to `netops lab up`; `RUN_ID` is the id of a run this test made for the purpose."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import skip_unless_lab_possible
from tests.integration.helpers import REPO

pytestmark = pytest.mark.lab
K = 191
LAB_ARGS = f" --prefix nt{K} --subnet 198.19.{K}.0/24"
NOT_RUN = {
    "bash scripts/demo.sh": "installs Debian packages; it is CI's own entry point",
    "bash scripts/test.sh": "installs Debian packages and runs this very suite",
    "pip install .": "tests/integration/test_package.py builds the wheel and installs it",
    "python3 bench/run.py --nodes 10,50,100 --repeat 3": "a benchmark of minutes",
    "python3 bench/journal_bench.py --runs 1000": "a benchmark",
}
SCHEDULES = """\
timezone: UTC
schedules:
  nightly-forward-report:
    runbook: check-ip-forward
    nodes: workers
    cron: "30 1 * * *"
    window: 1h
    dry_run: true
"""


def shown_commands(text: str) -> list[str]:
    """Each line of the README's ```sh blocks, its trailing comment cut."""
    out: list[str] = []
    block = False
    for line in text.splitlines():
        if line.startswith("```"):
            block = line.strip() == "```sh"
            continue
        if block and line.strip():
            out.append(re.sub(r"\s+#\s.*$", "", line).strip())
    return out


@dataclass
class Done:
    rc: int
    stdout: str
    stderr: str

    def ok(self, *rcs: int) -> Done:
        assert self.rc in (rcs or (0,)), f"rc {self.rc}\n{self.stdout}\n{self.stderr}"
        assert "Traceback" not in self.stderr, self.stderr
        return self


class Shell:
    """Runs README lines with bash in the test's home, `netops` being this checkout."""

    def __init__(self, home: Path) -> None:
        self.home = home
        bin_dir = home / "bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "netops"
        wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m netops \"$@\"\n")
        wrapper.chmod(0o755)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                    "PYTHONPATH": str(REPO), "HOME": str(home),
                    "NETOPS_INVENTORY": str(home / ".netops-lab" / "inventory.yaml"),
                    "NETOPS_SCHEDULES": str(home / "schedules.yaml"),
                    "XDG_STATE_HOME": str(home / "state"),
                    "XDG_CONFIG_HOME": str(home / "config"), "COLUMNS": "200"}
        for name in ("NETOPS_JOURNAL", "NETOPS_LAB_DIR", "NETOPS_HOST_KEYS", "FORCE_COLOR",
                     "TTY_COMPATIBLE", "NETOPS_SSH_CONFIG"):
            self.env.pop(name, None)

    def __call__(self, line: str, timeout: float = 600) -> Done:
        done = subprocess.run(["bash", "-c", line], capture_output=True, text=True,
                              cwd=self.home, env=self.env, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return Done(done.returncode, done.stdout, done.stderr)

    def json(self, line: str) -> object:
        return json.loads(self(line).ok().stdout)

    def node(self, node: str, command: str) -> str:
        """`command` as root inside a lab node (the lab's own way in, not netops)."""
        from netops.lab import Lab

        return Lab.load(self.home / ".netops-lab").node_exec(node, command).stdout


def _runs(sh: Shell, runbook: str) -> list[dict[str, object]]:
    runs = sh.json(f"netops history --runbook {runbook} --json")
    assert isinstance(runs, dict)
    return list(runs["runs"])


def _scheduler(sh: Shell, line: str) -> None:
    """The foreground loop: it starts, reports its schedules, and stops on SIGTERM."""
    proc = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=sh.home, env=sh.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopping" in err and "Traceback" not in err


class Checks:
    """README command -> how it is run and what it must do (`table`)."""

    def __init__(self, sh: Shell) -> None:
        self.sh = sh
        self.inventory = sh.home / ".netops-lab" / "inventory.yaml"
        self.ids: dict[str, str] = {}

    def lab_up(self, line: str) -> None:
        self.sh(line + LAB_ARGS).ok()
        assert self.inventory.is_file()

    def export(self, line: str) -> None:
        assert self.sh(f'{line}; printf %s "$NETOPS_INVENTORY"').ok().stdout == str(self.inventory)

    def version(self, line: str) -> None:
        assert re.fullmatch(r"netops \d+\.\d+\.\d+\S*\n", self.sh(line).ok().stdout)

    def inventory_table(self, line: str) -> None:
        rows = {r.split()[0]: r.split() for r in self.sh(line).ok().stdout.splitlines()[1:]}
        assert set(rows) == {"chick1", "chick11", "chick12"}
        assert rows["chick11"][-1] == "workers" and "etcd" in rows["chick1"][-1]

    def inventory_list(self, line: str) -> None:
        doc = json.loads(self.sh(line).ok().stdout)
        assert set(doc["_meta"]["hostvars"]) == {"chick1", "chick11", "chick12"}

    def list_(self, line: str) -> None:
        out = self.sh(line).ok().stdout
        assert re.search(r"^fix-calico\s+yes\s+packaged\s", out, re.MULTILINE), out

    def show(self, line: str) -> None:
        out = self.sh(line).ok().stdout
        assert out.startswith("fix-calico (disruptive): ") and "drain_timeout" in out

    def exec_workers(self, line: str) -> None:
        out = self.sh(line).ok().stdout
        assert sorted(out.splitlines()) == ["chick11: 1", "chick12: 1"], out
        (run,) = _runs(self.sh, "exec")
        self.ids["exec"] = str(run["run_id"])

    def exec_awk(self, line: str) -> None:
        self.sh.node("chick12", "sysctl -qw net.ipv4.ip_forward=0")
        assert self.sh(line).ok().stdout == "chick12\n"  # the hosts whose forwarding is off

    def calico_dry(self, line: str) -> None:
        r = self.sh(line).ok()
        assert "fix-calico — ok (dry run)" in r.stderr, r.stderr

    def calico(self, line: str) -> None:
        r = self.sh(line).ok()
        assert "fix-calico — ok" in r.stderr, r.stderr

    def forward_rolling(self, line: str) -> None:
        r = self.sh(line).ok()
        assert "batch 1: chick11" in r.stderr and "batch 2: chick12" in r.stderr
        assert self.sh.node("chick12", "sysctl -n net.ipv4.ip_forward").strip() == "1"

    def forward_var(self, line: str) -> None:
        r = self.sh(line.replace("check-ip-forward", "check-ip-forward --json")).ok()
        run_id = json.loads(r.stdout)["run_id"]
        doc = self.sh.json(f"netops report {run_id} --json")
        assert isinstance(doc, dict)
        assert doc["run"]["params"]["persist_file"] == "/etc/sysctl.d/80-forward.conf"

    def diagnose(self, line: str) -> None:
        r = self.sh(line).ok(0, 1)  # 1: something is not ok (reset-flannel-subnet is unknown)
        assert "KeyError" not in r.stderr
        found = self.sh(line.replace("--evidence", "--json")).ok(0, 1).stdout
        flannel = json.loads(found)["nodes"]["chick11"]["reset-flannel-subnet"]
        # its once-steps run on the etcd group, which has no host among the workers
        assert flannel["status"] == "unknown" and "no host of group 'etcd'" in \
            flannel["evidence"], flannel

    def history(self, line: str) -> None:
        out = self.sh(line).ok().stdout
        runbooks = {r.split()[3] for r in out.splitlines()[1:]}
        assert {"exec", "fix-calico", "check-ip-forward"} <= runbooks, out

    def report(self, line: str) -> None:
        out = self.sh(line.replace("RUN_ID", self.ids["exec"])).ok().stdout  # exec ids work too
        assert self.ids["exec"] in out and "chick11" in out and "sysctl" in out

    def resume(self, line: str) -> None:
        from netops.lab import Lab

        lab = Lab.load(self.sh.home / ".netops-lab")
        lab.stop_sshd("chick12")
        try:
            failed = self.sh("netops --connect-timeout 3 run check-ip-forward --nodes workers "
                        "--yes --json").ok(1)
        finally:
            lab.start_sshd("chick12")
        run_id = json.loads(failed.stdout)["run_id"]
        r = self.sh(line.replace("RUN_ID", run_id)).ok()
        assert "resuming run" in r.stderr and "chick12" in r.stderr

    def validate(self, line: str) -> None:
        self.sh(line).ok()
        schema = json.loads((self.sh.home / "runbook.schema.json").read_text())
        assert schema["type"] == "object"

    def schedule_check(self, line: str) -> None:
        (self.sh.home / "schedules.yaml").write_text(SCHEDULES)  # NETOPS_SCHEDULES names it
        assert "1 schedule(s), 0 problem(s)" in self.sh(line).ok().stderr

    def schedule_list(self, line: str) -> None:
        out = self.sh(line).ok().stdout
        assert re.search(r"^nightly-forward-report\s+check-ip-forward \(dry run\)\s+workers",
                         out, re.MULTILINE), out

    def scheduler_once(self, line: str) -> None:
        self.sh(line).ok()

    def until(self, line: str) -> None:
        assert "check-ip-forward — ok" in self.sh(line).ok().stderr

    def lab_status(self, line: str) -> None:
        assert "chick11" in (lambda r: r.stdout + r.stderr)(self.sh(line).ok())

    def fault_list(self, line: str) -> None:
        assert "ip-forward-off" in self.sh(line).ok().stdout

    def lab_ssh(self, line: str) -> None:
        assert self.sh(line).ok().stdout.strip() == "chick11"

    def lab_down(self, line: str) -> None:
        self.sh(line).ok()
        assert not self.inventory.exists()

    def table(self) -> dict[str, Callable[[str], None]]:
        return {
            "netops lab up --nodes chick1,chick11,chick12 --healthy": self.lab_up,
            "export NETOPS_INVENTORY=$PWD/.netops-lab/inventory.yaml": self.export,
            "netops --version": self.version,
            "netops inventory": self.inventory_table,
            "netops inventory --list": self.inventory_list,
            "netops list": self.list_,
            "netops show fix-calico": self.show,
            "netops exec --nodes workers -- sysctl -n net.ipv4.ip_forward": self.exec_workers,
            "netops exec --nodes all -- sysctl -n net.ipv4.ip_forward | awk -F': ' "
            "'$2 != 1 {print $1}'": self.exec_awk,
            "netops run fix-calico --nodes chick11,chick12 --dry-run": self.calico_dry,
            "netops run fix-calico --nodes chick11,chick12 --yes": self.calico,
            "netops run check-ip-forward --nodes workers --batch-size 1,25% --max-fail 1":
                self.forward_rolling,
            "netops run check-ip-forward --nodes chick11 -e "
            "persist_file=/etc/sysctl.d/80-forward.conf": self.forward_var,
            "netops diagnose --nodes workers --evidence": self.diagnose,
            "netops history --node chick11 --since 1d": self.history,
            "netops report RUN_ID": self.report,
            "netops run --resume RUN_ID": self.resume,
            "netops validate && netops schema > runbook.schema.json": self.validate,
            "netops schedule check": self.schedule_check,
            "netops schedule list": self.schedule_list,
            "netops scheduler": lambda line: _scheduler(self.sh, line),
            "netops scheduler --once": self.scheduler_once,
            "netops run check-ip-forward --nodes workers --until 05:00": self.until,
            "netops lab status": self.lab_status,
            "netops lab fault list": self.fault_list,
            "netops lab ssh chick11 -- hostname": self.lab_ssh,
            "netops lab down": self.lab_down,
        }




def test_every_command_the_readme_shows(tmp_path: Path) -> None:
    commands = shown_commands((REPO / "README.md").read_text())
    sh = Shell(tmp_path)
    checks = Checks(sh).table()
    unknown = [c for c in commands if c not in checks and c not in NOT_RUN]
    assert not unknown, f"the README shows commands no test runs: {unknown}"
    stale = [c for c in [*checks, *NOT_RUN] if c not in commands]
    assert not stale, f"tested commands the README no longer shows: {stale}"
    skip_unless_lab_possible()
    try:
        for line in commands:
            if line in checks:
                checks[line](line)
    finally:
        from netops.lab import Lab

        if Lab.is_up(tmp_path / ".netops-lab"):
            Lab.load(tmp_path / ".netops-lab").down()

