"""`netops lab verify` (issue 18 item 5): every runbook proves itself on a lab of its own.

The whole library's `tests:` scenarios must all pass (k=241); an operator's runbook whose run
does not fix its scenario must be caught, with a MISS row and exit 1 (k=242); Ctrl-C mid-round
tears the lab down (k=242 again: the module's tests run one after another); bad input exits 2
before any lab is built. Each call builds and tears down its own lab.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netops.runbook.load import load_all
from tests.conftest import skip_unless_lab_possible
from tests.integration.helpers import REPO

LIBRARY = REPO / "netops" / "runbooks"


def verify(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netops", "lab", "verify", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def runbooks(tmp_path: Path, *texts: str) -> Path:
    """A runbook directory with `texts`, each in a file named after its runbook."""
    mine = tmp_path / "runbooks"
    mine.mkdir()
    for text in texts:
        (mine / f"{text.split()[1]}.yaml").write_text(text)
    return mine


def leftovers(prefix: str) -> list[str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [line for line in links.splitlines() if f" {prefix}" in line]


@pytest.mark.lab
def test_the_whole_library_proves_itself(tmp_path: Path) -> None:
    skip_unless_lab_possible()
    began = time.monotonic()
    done = verify("--json", "--prefix", "nt241", "--subnet", "198.19.241.0/24", cwd=tmp_path)
    took = time.monotonic() - began
    report = json.loads(done.stdout or "{}")
    missed = [f"{s['runbook']}/{s['scenario']} {n}: {c['evidence']}"
              for s in report.get("scenarios", []) for n, c in s["checks"].items()
              if c["verdict"] == "MISS"]
    assert done.returncode == 0 and report["ok"], "\n".join(missed) + done.stderr[-3000:]
    books, _ = load_all([LIBRARY])
    proved = {s["runbook"] for s in report["scenarios"]}
    assert proved == set(books), "every shipped runbook carries scenarios, all verified"
    assert len(report["scenarios"]) == sum(len(rb.tests) for rb in books.values())
    for s in report["scenarios"]:  # every check ran: ok, or n/a for a report-only healthy
        verdicts = {n: c["verdict"] for n, c in s["checks"].items()}
        assert len(verdicts) == 9 and set(verdicts.values()) <= {"ok", "n/a"}, s
    assert not leftovers("nt241")
    print(f"lab verify over the library: {len(report['scenarios'])} scenarios, {took:.0f} s")


WRONG = """\
name: wrong-forward-fix
description: >-
  An operator's runbook that checks ip_forward but "fixes" it by writing a marker file: its
  run changes the node, and leaves it broken.
params:
  marker: {type: string, default: /var/lib/wrong-forward-fix}
steps:
  - id: runtime
    name: ip_forward is 1
    check: cat /proc/sys/net/ipv4/ip_forward
    expect: {stdout: "1"}
  - id: fix
    name: the wrong fix
    when: runtime.failed
    shell: echo done > {{ marker }}
    creates: "{{ marker }}"
tests:
  - name: forwarding-off
    inject:
      - sysctl -qw net.ipv4.ip_forward=0
      - printf 'net.ipv4.ip_forward = 0\\n' > /etc/sysctl.d/zz-off.conf  # and at boot
    healthy: [test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1]
"""


SLOPPY = """\
name: sloppy-forward-fix
description: >-
  Fixes ip_forward, but its "read-only" probe leaves a file behind, in dry runs too.
steps:
  - id: probe
    shell: date > /var/lib/sloppy-probe; cat /proc/sys/net/ipv4/ip_forward
    mutates: false
  - sysctl: {key: net.ipv4.ip_forward, value: "1", persist: /etc/sysctl.d/90-sloppy.conf}
tests:
  - name: forwarding-off
    inject: [sysctl -qw net.ipv4.ip_forward=0]
    healthy: [test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1]
"""


@pytest.mark.lab
def test_runbooks_that_do_not_fix_or_that_write_in_a_dry_run_are_misses(tmp_path: Path) -> None:
    skip_unless_lab_possible()
    mine = runbooks(tmp_path, WRONG, SLOPPY)
    done = verify("wrong-forward-fix", "sloppy-forward-fix", "--runbooks", str(mine),
                  "--prefix", "nt242", "--subnet", "198.19.242.0/24", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {line.split()[0]: line.split()[2:] for line in done.stdout.splitlines()
            if "-forward-fix/" in line.split(" ", 1)[0]}
    # inject, dry-run, unchanged, diagnose, run, re-run: as they should be; the node is
    # not fixed, a reboot does not fix it either, and diagnose calls it ok (the marker file
    # makes the runbook believe it converged)
    assert rows["wrong-forward-fix/forwarding-off"] == [
        "ok", "ok", "ok", "ok", "ok", "MISS", "ok", "MISS", "MISS"], done.stdout
    assert "MISS wrong-forward-fix/forwarding-off healthy: `test \"$(cat " \
        "/proc/sys/net/ipv4/ip_forward)\" = 1` rc 1" in done.stdout
    assert "diagnose-after: chick2 ok (want broken)" in done.stdout
    # the sloppy one fixes the node, but its dry run wrote on both nodes
    assert rows["sloppy-forward-fix/forwarding-off"] == [
        "ok", "ok", "MISS", "ok", "ok", "ok", "ok", "ok", "ok"], done.stdout
    assert re.search(r"MISS sloppy-forward-fix/forwarding-off unchanged: chick1: "
                     r"\+/var/lib/sloppy-probe f .*; chick3: \+/var/lib/sloppy-probe f ",
                     done.stdout), done.stdout
    assert "0 of 2 scenarios proved" in done.stderr
    assert not leftovers("nt242")


@pytest.mark.lab
def test_ctrl_c_tears_the_lab_down(tmp_path: Path) -> None:
    skip_unless_lab_possible()
    mine = runbooks(tmp_path, WRONG)
    child = subprocess.Popen(
        [sys.executable, "-m", "netops", "lab", "verify", "wrong-forward-fix", "--runbooks",
         str(mine), "--prefix", "nt242", "--subnet", "198.19.242.0/24"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path)
    assert child.stderr is not None
    seen = ""
    for line in child.stderr:  # interrupted mid-round, the lab up and a node broken
        seen += line
        if line.startswith("round 1/"):
            break
    where = re.search(r" in (/\S+/lab) \.\.\.", seen)
    assert where, seen
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=120) == 130, seen + child.stderr.read()
    assert not leftovers("nt242")
    assert not Path(where.group(1)).exists()
    for proc in Path("/proc").iterdir():  # no supervisor, etcd or node of it is left
        try:
            cmdline = (proc / "cmdline").read_bytes() if proc.name.isdigit() else b""
        except OSError:
            continue
        assert where.group(1).encode() not in cmdline, cmdline


def test_bad_input_exits_2_before_any_lab(tmp_path: Path) -> None:
    skip_unless_lab_possible()  # verify needs root, even to refuse
    head = WRONG.split("tests:")[0]
    mine = runbooks(tmp_path, head.replace("wrong-forward-fix", "untested"),
                    head.replace("wrong-forward-fix", "faulty")
                    + "tests:\n  - name: a\n    lab_fault: no-such-fault\n    fixed: false\n")
    refused = {
        ("untested",): f"{mine / 'untested.yaml'}:1:1: runbook untested has no `tests:` "
                       "scenario",
        ("faulty",): f"{mine / 'faulty.yaml'}:18:5: test 'a': unknown lab fault "
                     "'no-such-fault'",
        ("no-such-runbook",): "no runbook named 'no-such-runbook'",
    }
    for args, error in refused.items():
        done = verify(*args, "--runbooks", str(mine), cwd=tmp_path, timeout=60)
        assert done.returncode == 2 and error in done.stderr, done.stderr
        assert "building" not in done.stderr, "a lab was built for bad input"
    # the whole directory: one runbook that does not load is enough to refuse
    (mine / "broken.yaml").write_text(
        WRONG.replace("wrong-forward-fix", "broken") + "    vars: {markr: x}\n")
    done = verify("--runbooks", str(mine), cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "building" not in done.stderr
    assert f"{mine / 'broken.yaml'}:23:12: test 'forwarding-off': no param 'markr'" \
        in done.stderr
