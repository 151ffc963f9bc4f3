"""`netops exec` and `netops inventory` against six lab nodes over real SSH (issue 2)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from netops.lab import Lab
from tests.integration.helpers import Cli, lab_for

pytestmark = pytest.mark.lab
NAMES = [f"chick{i}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from lab_for(tmp_path_factory.mktemp("exec"), NAMES, 111)


def test_parallel_exec_on_six_nodes(cli: Cli) -> None:
    # Each node records when the command started and ended: all six must overlap in time.
    r = cli("exec", "--nodes", "all", "--json", "--",
            "date +%s.%N; sleep 1; date +%s.%N; hostname")
    assert r.rc == 0, r.stderr
    hosts = r.json["hosts"]
    assert set(hosts) == set(NAMES)
    spans = {}
    for name, h in hosts.items():
        assert h["status"] == "ok"
        start, end, hostname = h["steps"][0]["stdout"].split()
        assert hostname == name
        spans[name] = (float(start), float(end))
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values())


def test_exec_table_and_patterns(cli: Cli) -> None:
    r = cli("exec", "--nodes", "chick1,chick2,chick3,!chick2", "--json", "--",
            "echo hi from $(hostname)")
    assert r.rc == 0, r.stderr
    assert r.statuses() == {"chick1": "ok", "chick3": "ok"}
    # without --json the output is on stdout, `host: line` (issue 15)
    r = cli("exec", "--nodes", "chick1,chick2,chick3,!chick2", "--", "echo hi from $(hostname)")
    assert r.rc == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["chick1: hi from chick1", "chick3: hi from chick3"]


def test_unknown_node_exits_2_with_close_matches(cli: Cli) -> None:
    r = cli("exec", "--nodes", "chik1", "--", "true")
    assert r.rc == 2
    assert "chik1" in r.stderr and "chick1" in r.stderr


def test_stopped_sshd_is_unreachable_while_others_succeed(lab: Lab, cli: Cli) -> None:
    lab.stop_sshd("chick3")
    try:
        r = cli("--connect-timeout", "3", "exec", "--nodes", "chick2,chick3,chick4", "--json",
                "--", "true")
    finally:
        lab.start_sshd("chick3")
    assert r.rc == 1
    assert r.statuses() == {"chick2": "ok", "chick3": "unreachable", "chick4": "ok"}
    assert "chick3" in r.stderr and "unreachable" in r.stderr


def test_hung_command_hits_its_timeout_and_leaves_nothing_behind(lab: Lab, cli: Cli) -> None:
    r = cli("exec", "--nodes", "chick1", "--timeout", "1", "--json", "--",
            "sleep 300; echo never")
    assert r.rc == 1
    step = r.json["hosts"]["chick1"]["steps"][0]
    assert step["status"] == "failed" and "never" not in step["stdout"]
    left = lab.node_exec("chick1", "pgrep -f 'slee[p] 300' || true").stdout.strip()
    assert left == ""


def _known_hosts_variant(lab: Lab, tmp: Path, text: str) -> Path:
    """An inventory identical to the lab's but trusting `text` as its known_hosts."""
    known = tmp / "known_hosts"
    known.write_text(text)
    cfg = tmp / "ssh_config"
    cfg.write_text(re.sub(r"UserKnownHostsFile \S+", f"UserKnownHostsFile {known}",
                          lab.ssh_config_path.read_text()))
    inv = tmp / "inventory.yaml"
    inv.write_text(lab.inventory_path.read_text().replace(str(lab.ssh_config_path), str(cfg)))
    return inv


def test_changed_host_key_is_refused_under_strict(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    # chick2's entry holds chick1's key: to the client, chick2 now presents a changed key.
    lines = lab.known_hosts_path.read_text().splitlines()
    key_of = {ln.split()[0]: " ".join(ln.split()[1:]) for ln in lines if ln.strip()}
    chick1_key = next(k for names, k in key_of.items()
                      if lab.address("chick1") in names.split(","))
    forged = "\n".join(
        f"{names} {chick1_key}" if lab.address("chick2") in names.split(",") else f"{names} {k}"
        for names, k in key_of.items()) + "\n"
    inv = _known_hosts_variant(lab, tmp_path, forged)
    for mode in ("strict", "accept-new"):
        r = cli("-i", str(inv), "--host-keys", mode, "exec", "--nodes", "chick1,chick2",
                "--json", "--", "true")
        assert r.rc == 1, r.stderr
        assert r.statuses() == {"chick1": "ok", "chick2": "unreachable"}
        assert "CHANGED" in r.stderr or "changed" in r.stderr


def test_unknown_host_refused_under_strict_recorded_under_accept_new(
        lab: Lab, cli: Cli, tmp_path: Path) -> None:
    inv = _known_hosts_variant(lab, tmp_path, "")
    r = cli("-i", str(inv), "exec", "--nodes", "chick5", "--json", "--", "true")
    assert r.rc == 1 and r.statuses() == {"chick5": "unreachable"}
    assert "known_hosts" in r.stderr
    r = cli("-i", str(inv), "--host-keys", "accept-new", "exec", "--nodes", "chick5", "--json",
            "--", "true")
    assert r.rc == 0, r.stderr
    recorded = (cli.home / "state" / "netops" / "known_hosts").read_text()
    assert lab.address("chick5") in recorded
    # once recorded, strict mode trusts it
    r = cli("-i", str(inv), "exec", "--nodes", "chick5", "--json", "--", "true")
    assert r.rc == 0, r.stderr


def test_off_warns_loudly(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    inv = _known_hosts_variant(lab, tmp_path, "")
    r = cli("-i", str(inv), "--host-keys", "off", "exec", "--nodes", "chick6", "--", "true")
    assert r.rc == 0 and "WARNING" in r.stderr


def test_inventory_of_the_lab(cli: Cli) -> None:
    r = cli("inventory", "--list")
    assert r.rc == 0, r.stderr
    assert set(r.json["_meta"]["hostvars"]) == set(NAMES)
    r = cli("inventory", "--nodes", "workers")
    assert r.rc == 0 and "chick4" in r.stdout and "chick1 " not in r.stdout  # data: stdout


def test_bad_inventory_and_missing_key_exit_2(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("all:\n  hosts:\n    - chick1\n")
    r = cli("-i", str(bad), "exec", "--", "true")
    assert r.rc == 2 and f"{bad}:3:" in r.stderr
    inv = tmp_path / "nokey.yaml"
    inv.write_text(lab.inventory_path.read_text().replace(str(lab.key_path), "/nope/id_none"))
    r = cli("-i", str(inv), "exec", "--nodes", "chick1", "--", "true")
    assert r.rc == 2 and "/nope/id_none" in r.stderr
