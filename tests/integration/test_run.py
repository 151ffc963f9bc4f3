"""`netops run` on lab nodes: faithful dry run, fix, idempotence, reboot, halts, gates (issue 3);
journal, locks, interruption and resume (issue 6)."""

from __future__ import annotations

import signal
import sqlite3
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netops.lab import Lab
from tests.integration.helpers import Cli, lab_for, settled, snapshot

pytestmark = pytest.mark.lab
NAMES = ["chick1", "chick2", "chick3"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from lab_for(tmp_path_factory.mktemp("run"), NAMES, 112)


def break_ip_forward(lab: Lab) -> None:
    """chick1 healthy; chick2 off now; chick3 fine now but a later sysctl file turns it off
    at boot (RUNBOOKS 1.2)."""
    lab.node_exec("chick1", "sysctl -qw net.ipv4.ip_forward=1; printf 'net.ipv4.ip_forward = 1"
                  "\\n' > /etc/sysctl.d/99-kubernetes-cri.conf")
    lab.node_exec("chick2", "sysctl -qw net.ipv4.ip_forward=0")
    lab.node_exec("chick3", "sysctl -qw net.ipv4.ip_forward=1; "
                  "printf 'net.ipv4.ip_forward = 0\\n' > /etc/sysctl.d/99-zz-off.conf")


def test_dry_run_fix_idempotence_and_reboot(lab: Lab, cli: Cli) -> None:
    break_ip_forward(lab)
    before = settled(lab)
    dry = cli("run", "check-ip-forward", "--nodes", "all", "--dry-run", "--json")
    assert dry.rc == 0, dry.stderr
    assert dry.json["dry_run"] is True
    assert dry.statuses() == {"chick1": "ok", "chick2": "would-change",
                              "chick3": "would-change"}
    assert dry.step_status("chick2", "ip_forward") == "would-change"
    assert "runtime 0 -> 1" in dry.stderr and "99-zz-off.conf" in dry.stderr
    assert snapshot(lab) == before, "a dry run changed a node"

    real = cli("run", "check-ip-forward", "--nodes", "all", "--json", "--yes")
    assert real.rc == 0, real.stderr
    assert real.statuses() == {"chick1": "ok", "chick2": "changed", "chick3": "changed"}
    for name in NAMES:
        assert lab.node_exec(name, "sysctl -n net.ipv4.ip_forward").stdout.strip() == "1"

    again = cli("run", "check-ip-forward", "--nodes", "all", "--json", "--yes")
    assert again.rc == 0 and set(again.statuses().values()) == {"ok"}

    lab.reboot("chick3")
    assert lab.node_exec("chick3", "sysctl -n net.ipv4.ip_forward").stdout.strip() == "1"
    after = cli("run", "check-ip-forward", "--nodes", "chick3", "--json", "--yes")
    assert after.statuses() == {"chick3": "ok"}

    # the journal holds every run, with each step
    hist = cli("history", "--json")
    runs = hist.json["runs"]
    assert [r["status"] for r in runs][:4] == ["ok", "ok", "ok", "ok"]
    assert runs[-1]["dry_run"] is True
    report = cli("report", runs[-2]["run_id"])
    assert report.rc == 0 and "## What was done" in report.stdout
    assert "| chick2 | 2 | changed | ip_forward |" in report.stdout


def runbook_state(snapshot_text: str) -> str:
    """A node's snapshot without what neither a runbook nor diagnose writes: netops' own lock
    directory (a real run locks every target first) and the node-local-dns pod's iptables rules
    (the lab's kubelet may still be restarting that pod right after `lab up`)."""
    return "\n".join(line for line in snapshot_text.splitlines()
                     if "/var/lib/netops" not in line and "169.254.25.10" not in line)


def test_unreachable_node_halts_batch_one_with_the_rest_not_run(lab: Lab, cli: Cli) -> None:
    break_ip_forward(lab)
    before = snapshot(lab)
    lab.stop_sshd("chick1")
    try:
        r = cli("--connect-timeout", "2", "run", "check-ip-forward", "--nodes", "all",
                "--batch-size", "1", "--max-fail", "0", "--json", "--yes")
    finally:
        lab.start_sshd("chick1")
    assert r.rc == 1
    assert r.json["status"] == "halted"
    assert r.statuses() == {"chick1": "unreachable", "chick2": "not-run", "chick3": "not-run"}
    after = snapshot(lab)
    assert all(runbook_state(after[n]) == runbook_state(before[n]) for n in ("chick2", "chick3"))
    assert "not run: chick2, chick3" in r.stderr


def test_diagnose_names_an_unreachable_node_and_changes_nothing(lab: Lab, cli: Cli) -> None:
    """Several runbooks side by side (the rounds path): the down node is unreachable for every
    one of them, the others get their findings, and no node changes."""
    break_ip_forward(lab)
    before = snapshot(lab)
    lab.stop_sshd("chick1")
    try:
        r = cli("--connect-timeout", "2", "diagnose", "--json", "-r", "check-ip-forward",
                "-r", "check-bridge-nf", "-r", "iptables-forward-accept")
    finally:
        lab.start_sshd("chick1")
    assert r.rc == 1, r.stderr
    cells = {n: {rb: c["status"] for rb, c in row.items()} for n, row in r.json["nodes"].items()}
    assert set(cells["chick1"].values()) == {"unreachable"} and len(cells["chick1"]) == 3
    assert cells["chick2"]["check-ip-forward"] == cells["chick3"]["check-ip-forward"] == "broken"
    assert "unreachable: chick1" in r.stderr
    after = snapshot(lab)  # chick1's own pods restart with its sshd (the lab's kubelet)
    assert all(runbook_state(after[n]) == runbook_state(before[n]) for n in ("chick2", "chick3"))


def write_runbook(tmp: Path, name: str, body: str) -> Path:
    p = tmp / f"{name}.yaml"
    p.write_text(textwrap.dedent(body))
    return p


def test_failing_verify_gate_halts(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, "gated", """\
        name: gated
        description: a fix whose health gate fails on chick1
        steps:
          - shell: touch /tmp/gated-touched
            unless: test -e /tmp/gated-touched
        verify:
          - check: test "$(hostname)" != chick1
    """)
    lab.node_exec("chick1", "rm -f /tmp/gated-touched")
    r = cli("run", str(rb), "--nodes", "all", "--batch-size", "1", "--json", "--yes")
    assert r.rc == 1 and r.json["status"] == "halted"
    assert r.statuses() == {"chick1": "failed", "chick2": "not-run", "chick3": "not-run"}
    for name in ("chick2", "chick3"):
        assert lab.node_exec(name, "test -e /tmp/gated-touched", check=False).returncode != 0


def test_hostile_var_reaches_the_node_as_a_literal(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, "echo-var", """\
        name: echo-var
        description: writes a param to a file
        params:
          text: {type: string, required: true}
        steps:
          - shell: printf %s {{ text }} > /tmp/echo-var
    """)
    evil = "x; rm -rf /tmp/canary; $(touch /tmp/pwned) `touch /tmp/pwned2` 'q\"\\"
    lab.node_exec("chick2", "rm -f /tmp/pwned /tmp/pwned2; mkdir -p /tmp/canary")
    r = cli("run", str(rb), "--nodes", "chick2", "--var", f"text={evil}", "--json", "--yes")
    assert r.rc == 0, r.stderr
    assert lab.node_exec("chick2", "cat /tmp/echo-var").stdout == evil
    assert lab.node_exec("chick2", "ls /tmp").stdout.split().count("canary") == 1
    assert "pwned" not in lab.node_exec("chick2", "ls /tmp").stdout


@pytest.mark.parametrize("body,words", [
    ("name: x\ndescription: y\nsteps:\n  - check: [oops\n", ":5:1: invalid YAML"),
    ("name: x\ndescription: y\nsteps:\n  - check: 'true'\n    bogus: 1\n", ":5:5: "),
    ("name: x\ndescription: y\nsteps:\n  - check: 'true'\n    retries: x\n", ":5:14: "),
    ("name: x\ndescription: y\nsteps:\n  - shell: echo {{ nope }}\n", ":4:12: "),
    ("name: x\ndescription: y\nsteps:\n  - check: 'true'\n    when: ghost.failed\n", ":5:11: "),
])
def test_malformed_runbook_exits_2_before_touching_hosts(cli: Cli, tmp_path: Path, body: str,
                                                         words: str) -> None:
    p = tmp_path / "x.yaml"
    p.write_text(body)
    r = cli("run", str(p), "--nodes", "all", "--yes")
    assert r.rc == 2 and f"{p}{words}" in r.stderr, r.stderr
    assert not (cli.home / "journal.db").exists() or not sqlite3.connect(
        cli.home / "journal.db").execute("SELECT * FROM runs").fetchall()


SLOW = """\
    name: slow
    description: three steps per node, each marks the node; the middle one is slow
    rollout: {batch_size: 1}
    steps:
      - id: first
        shell: echo first >> /var/tmp/slow.log
      - id: snooze
        shell: sleep {{ nap }}; echo nap >> /var/tmp/slow.log
      - id: last
        shell: echo last >> /var/tmp/slow.log
    params:
      nap: {type: int, default: 2}
"""


def test_second_run_on_a_locked_node_exits_3_and_touches_nothing(
        lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, "slow", SLOW)
    for n in NAMES:
        lab.node_exec(n, "rm -f /var/tmp/slow.log")
    first = cli.popen("run", str(rb), "--nodes", "chick1,chick2", "--var", "nap=3", "--yes")
    time.sleep(2.0)
    second = cli("run", str(rb), "--nodes", "chick2,chick3", "--yes")
    assert first.wait(timeout=60) == 0, first.stderr.read() if first.stderr else ""
    assert second.rc == 3, second.stderr
    assert "chick2" in second.stderr and "locked by run" in second.stderr
    assert lab.node_exec("chick3", "cat /var/tmp/slow.log", check=False).stdout == ""
    # released at the end: a third run may proceed
    third = cli("run", str(rb), "--nodes", "chick3", "--var", "nap=0", "--yes")
    assert third.rc == 0, third.stderr


def test_stale_lock_of_a_crashed_run_is_taken_over(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, "slow", SLOW)
    crashed = cli.popen("run", str(rb), "--nodes", "chick1", "--var", "nap=30", "--yes")
    deadline = time.monotonic() + 20
    while lab.node_exec("chick1", "test -d /var/lib/netops/lock", check=False).returncode:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    crashed.kill()  # SIGKILL: no cleanup, the lock stays behind
    crashed.wait()
    r = cli("run", str(rb), "--nodes", "chick1", "--var", "nap=0", "--yes")
    assert r.rc == 0, r.stderr
    runs = cli("history", "--json").json["runs"]
    assert runs[-1]["status"] == "crashed"


def test_sigint_then_resume_runs_no_step_twice(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, "slow", SLOW)
    for n in NAMES:
        lab.node_exec(n, "rm -f /var/tmp/slow.log")
    proc = cli.popen("run", str(rb), "--nodes", "all", "--var", "nap=3", "--yes")
    deadline = time.monotonic() + 30
    while "first" not in lab.node_exec("chick1", "cat /var/tmp/slow.log",
                                       check=False).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run_id = err.split("netops run --resume ")[1].split()[0]
    # chick1 finished the step in flight; the rest was marked not-run
    assert lab.node_exec("chick1", "cat /var/tmp/slow.log").stdout.split() == ["first", "nap"]
    hosts = _host_statuses(cli, run_id)
    assert hosts == {"chick1": "not-run", "chick2": "not-run", "chick3": "not-run"}
    # a runbook edited since the run is refused (exit 2) unless --force
    original = rb.read_text()
    rb.write_text(original + "# edited\n")
    refused = cli("run", "--resume", run_id, "--yes")
    assert refused.rc == 2 and "changed since run" in refused.stderr, refused.stderr
    rb.write_text(original)
    r = cli("run", "--resume", run_id, "--json", "--yes")
    assert r.rc == 0, r.stderr
    for n in NAMES:
        assert lab.node_exec(n, "cat /var/tmp/slow.log").stdout.split() == \
            ["first", "nap", "last"], n
    assert r.step_status("chick1", "first") == "skipped"


def _host_statuses(cli: Cli, run_id: str) -> dict[str, str]:
    doc = cli("report", run_id, "--format", "json").json
    return {h["host"]: h["status"] for h in doc["hosts"]}


FAULTS = """\
    name: faults
    description: a reboot step, and a step whose command hangs or whose sshd dies under it
    params:
      mode: {type: string, default: reboot}
    steps:
      - id: before
        check: cat /proc/sys/kernel/random/boot_id
      - id: restart
        reboot: 30s
        when: mode == "reboot"
      - id: hang
        shell: sleep 600
        timeout: 2s
        when: mode == "hang"
      - id: dies
        shell: "sleep 1; pkill -x sshd; sleep 30"
        when: mode == "kill-sshd"
      - id: after
        check: cat /proc/sys/kernel/random/boot_id
"""


def _journal_steps(cli: Cli, run_id: str, host: str) -> dict[str, dict[str, object]]:
    doc = cli("report", run_id, "--format", "json").json
    return {s["step_id"]: s for s in doc["steps"] if s["host"] == host}


def test_reboot_step_survives_the_disconnect_and_proves_the_new_boot(
        lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, "faults", FAULTS)
    r = cli("run", str(rb), "--nodes", "chick2", "--json", "--yes")
    assert r.rc == 0, r.stderr
    steps = {s["id"]: s for s in r.json["hosts"]["chick2"]["steps"]}
    assert steps["restart"]["status"] == "changed"
    assert steps["before"]["stdout"] != steps["after"]["stdout"]
    journal = _journal_steps(cli, r.json["run_id"], "chick2")
    assert journal["restart"]["status"] == "changed"
    assert "boot id" in str(journal["restart"]["note"])
    # the node lock was kept across the reboot and released at the end
    assert lab.node_exec("chick2", "test -e /var/lib/netops/lock", check=False).returncode != 0


def test_hung_command_is_killed_at_its_timeout_and_journaled(
        lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, "faults", FAULTS)
    r = cli("run", str(rb), "--nodes", "chick3", "--var", "mode=hang", "--json", "--yes")
    assert r.rc == 1
    assert r.step_status("chick3", "hang") == "failed"
    assert r.step_status("chick3", "after") == "not-run"
    journal = _journal_steps(cli, r.json["run_id"], "chick3")
    assert journal["hang"]["status"] == "failed" and "timed out" in str(journal["hang"]["note"])
    assert lab.node_exec("chick3", "pgrep -f 'slee[p] 600' || true").stdout.strip() == ""


def test_sshd_killed_mid_step_fails_the_step_never_ok(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, "faults", FAULTS)
    try:
        r = cli("run", str(rb), "--nodes", "chick1", "--var", "mode=kill-sshd", "--json", "--yes")
    finally:
        lab.start_sshd("chick1")
    assert r.rc == 1
    # a mutating step whose connection dropped: it may or may not have applied its change
    assert r.step_status("chick1", "dies") == "unknown"
    assert r.statuses()["chick1"] == "failed"
    journal = _journal_steps(cli, r.json["run_id"], "chick1")
    assert journal["dies"]["status"] == "unknown"
    assert "connection" in str(journal["dies"]["note"]).lower()
    run = cli("history", "--json").json["runs"][0]
    assert run["status"] == "failed"


def test_packets_dropped_mid_step_fail_the_step_with_an_explanation(
        lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, "blackhole", """\
        name: blackhole
        description: the network to the node disappears while a step runs
        steps:
          - id: work
            shell: sleep 3; echo done >> /var/tmp/blackhole.log
            timeout: 4s
    """)
    import threading

    rules = ("INPUT -p tcp --dport 22 -j DROP", "OUTPUT -p tcp --sport 22 -j DROP")
    proc = cli.popen("run", str(rb), "--nodes", "chick3", "--json", "--yes")
    time.sleep(1.5)
    lab.node_exec("chick3", "; ".join(f"iptables -I {r}" for r in rules))
    # the network comes back later: the lock can then be released
    heal = threading.Timer(12, lambda: lab.node_exec(
        "chick3", "; ".join(f"iptables -D {r}" for r in rules), check=False))
    heal.start()
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        heal.join()
    assert proc.returncode == 1, err
    import json

    step = json.loads(out)["hosts"]["chick3"]["steps"][0]
    assert step["status"] in ("failed", "unreachable") and step["status"] != "ok"
    journal = _journal_steps(cli, json.loads(out)["run_id"], "chick3")
    assert journal["work"]["status"] == step["status"] and journal["work"]["note"]


def test_lease_is_renewed_between_batches_of_a_long_run(lab: Lab) -> None:
    from netops import locks
    from netops.engine.events import BatchStarted
    from netops.inventory.load import load_inventory
    from netops.transport.ssh import SshConnector, SshOptions

    host = load_inventory(lab.inventory_path).host("chick1")
    t = SshConnector(SshOptions()).transport(host)
    clock = [1000.0]
    holder = locks.Holder("lease-run", "root", "ctl", 1, 1000.0, 1000.0 + 60)
    try:
        # an earlier test (sshd killed mid-run) left a lock behind: ours to take over
        assert locks.acquire(t, holder, lambda h: True) is None
        keeper = locks.LeaseKeeper(["chick1"], lambda _: t, holder, lease_s=60,
                                   now=lambda: clock[0])
        keeper.on_event(BatchStarted(2, ("chick1",)))  # too early: nothing to do
        owner = locks.Holder.parse(lab.node_exec("chick1", "cat /var/lib/netops/lock/owner")
                                   .stdout)
        assert owner is not None and owner.lease_until == 1060.0
        clock[0] = 1040.0  # past half the lease
        keeper.on_event(BatchStarted(3, ("chick1",)))
        owner = locks.Holder.parse(lab.node_exec("chick1", "cat /var/lib/netops/lock/owner")
                                   .stdout)
        assert owner is not None and owner.lease_until == 1100.0 and owner.run_id == "lease-run"
    finally:
        locks.release(t, "lease-run")
        t.close()
    assert lab.node_exec("chick1", "test -e /var/lib/netops/lock", check=False).returncode != 0


def test_second_ctrl_c_abandons_and_journals_it(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, "slow", SLOW)
    lab.node_exec("chick2", "rm -f /var/tmp/slow.log")
    proc = cli.popen("run", str(rb), "--nodes", "chick2", "--var", "nap=20", "--yes")
    deadline = time.monotonic() + 30
    while "first" not in lab.node_exec("chick2", "cat /var/tmp/slow.log",
                                       check=False).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.3)  # the nap step is in flight
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 10, "the second Ctrl-C must not wait for the step"
    assert "abandoned" in err and "--resume" in err
    run = cli("history", "--json").json["runs"][0]
    assert run["status"] == "interrupted" and "abandoned" in run["reason"]
    # the step in flight died with its session and is journaled as unknown
    assert _journal_steps(cli, run["run_id"], "chick2")["snooze"]["status"] == "unknown"
    time.sleep(2.0)
    assert lab.node_exec("chick2", "cat /var/tmp/slow.log").stdout.split() == ["first"]
    # a resume stops before it (no guard) and says how to go on; --unknown retry finishes
    stopped = cli("run", "--resume", run["run_id"], "--yes", "--json")
    assert stopped.rc == 1 and stopped.step_status("chick2", "snooze") == "unknown"
    assert "--unknown retry" in stopped.stderr
    done = cli("run", "--resume", run["run_id"], "--unknown", "retry", "--var", "nap=0",
               "--force", "--yes", "--json")
    assert done.rc == 0, done.stderr
    assert "--var nap=0 overrides the original run's nap=20 (--force)" in done.stderr
    assert done.step_status("chick2", "first") == "skipped"
    assert lab.node_exec("chick2", "cat /var/tmp/slow.log").stdout.split() == \
        ["first", "nap", "last"]
