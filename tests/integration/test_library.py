"""The runbook library (issue 4) against lab nodes broken by `netops.lab.faults`.

For each runbook: chick1 stays healthy, chick2 gets the fault. A dry run reports would-change
(or, for report-only findings, a failing check) on chick2 and ok on chick1 and changes nothing;
the real run fixes chick2; a second run is all ok. Persistence is checked by rebooting where the
story is about the next boot.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netops.errors import UserError
from netops.lab import Lab
from netops.lab import faults as F
from tests.integration.helpers import Cli, Result, lab_for, snapshot

pytestmark = pytest.mark.lab
NAMES = ["chick1", "chick2"]
GOOD, BAD = NAMES


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from lab_for(tmp_path_factory.mktemp("library"), NAMES, 121)


@pytest.fixture
def cli(lab: Lab, tmp_path: Path) -> Cli:
    """A CLI with its own journal; both nodes brought back to the healthy baseline first."""
    for name in NAMES:
        F.healthy(lab, name)
    return Cli(lab, tmp_path)


def sh(lab: Lab, node: str, command: str) -> str:
    return lab.node_exec(node, command).stdout


def run(cli: Cli, runbook: str, *args: str) -> Result:
    return cli("run", runbook, "--nodes", "all", "--json", *args)


def dry_fix_again(lab: Lab, cli: Cli, runbook: str, *args: str) -> Result:
    """Dry run (would-change on BAD only, nothing changed: nodes, etcd), real run (BAD
    changed), a second run (all ok). Returns the real run."""
    before = snapshot(lab), etcd_dump(lab)
    dry = run(cli, runbook, "--dry-run", *args)
    assert dry.statuses() == {GOOD: "ok", BAD: "would-change"}, dry.stdout + dry.stderr
    assert (snapshot(lab), etcd_dump(lab)) == before, "a dry run changed something"
    real = run(cli, runbook, "--yes", *args)
    assert real.rc == 0 and real.statuses() == {GOOD: "ok", BAD: "changed"}, \
        real.stdout + real.stderr
    again = run(cli, runbook, "--yes", *args)
    assert again.rc == 0 and set(again.statuses().values()) == {"ok"}, again.stdout
    return real


def test_fault_specs() -> None:
    assert F.parse("stale-ipam, hairpin-off@chick1", NAMES) == [
        ("stale-ipam", "chick2"), ("hairpin-off", "chick1")]
    for bad in ("no-such-fault", "stale-ipam@chick9", ""):
        with pytest.raises(UserError):
            F.parse(bad, NAMES)
    assert all(f.runbook and f.description for f in F.FAULTS.values())


LIBRARY = ["check-ip-forward", "check-bridge-nf", "iptables-forward-accept", "flush-stale-ipam",
           "networkd-unmanage-veth", "reset-flannel-subnet", "check-cni-config", "hairpin-mode",
           "check-conntrack"]


def test_diagnose_finds_healthy_nodes_ok(lab: Lab, cli: Cli) -> None:
    """Every runbook is ok on a healthy node: no would-change, no failing check."""
    args = [x for rb in LIBRARY for x in ("-r", rb)]
    r = cli("diagnose", "--json", *args)
    cells = {(n, rb): c["status"] for n, row in r.json["nodes"].items() for rb, c in row.items()}
    assert r.rc == 0 and set(cells.values()) == {"ok"}, r.stdout
    assert len(cells) == len(NAMES) * len(LIBRARY)


def test_check_ip_forward_boot_override(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"ip-forward-boot-override@{BAD}")
    dry_fix_again(lab, cli, "check-ip-forward")
    lab.reboot(BAD)
    assert sh(lab, BAD, "sysctl -n net.ipv4.ip_forward").strip() == "1"


def test_check_bridge_nf(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"bridge-nf-off@{BAD}")
    dry_fix_again(lab, cli, "check-bridge-nf")
    assert sh(lab, BAD, "sysctl -n net.bridge.bridge-nf-call-iptables "
                        "net.bridge.bridge-nf-call-ip6tables").split() == ["1", "1"]


@pytest.mark.parametrize("fault", ["forward-drop", "docker-dropin-no-service"])
def test_iptables_forward_accept(lab: Lab, cli: Cli, fault: str) -> None:
    F.inject(lab, f"{fault}@{BAD}")
    assert sh(lab, BAD, "iptables -S FORWARD | head -n1").strip() == "-P FORWARD DROP"
    real = dry_fix_again(lab, cli, "iptables-forward-accept")
    steps = {s["id"]: s["status"] for s in real.json["hosts"][BAD]["steps"]}
    assert steps["accept_from_pods"] == steps["accept_to_pods"] == "changed"
    assert steps["disable_ignored"] == ("changed" if fault == "docker-dropin-no-service"
                                        else "skipped")
    rules = sh(lab, BAD, "iptables -S FORWARD")
    assert "-A FORWARD -s 10.244.0.0/16 -j ACCEPT" in rules, rules
    assert "-P FORWARD DROP" in rules, "docker must not be restarted by the runbook"
    # The next docker start (here: a reboot) keeps FORWARD open through the drop-in.
    lab.reboot(BAD)
    assert sh(lab, BAD, "iptables -S FORWARD | head -n1").strip() == "-P FORWARD ACCEPT"


def test_flush_stale_ipam(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"stale-ipam@{BAD}")
    listing = "ls /var/lib/cni/networks/cbr0"
    assert len(sh(lab, BAD, listing).split()) == 10
    dry_fix_again(lab, cli, "flush-stale-ipam", "--var", "cordon=false")
    # live pods (.2, .3), the exited sandbox (.4) and host-local's own files stay
    assert sh(lab, BAD, listing).split() == ["10.244.2.2", "10.244.2.3", "10.244.2.4",
                                             "last_reserved_ip.0", "lock"]
    assert "cni-ipam-chick2-" in sh(lab, BAD, "ls /var/backups")
    assert sh(lab, BAD, "systemctl is-active kubelet").strip() == "active"


def test_networkd_unmanage_veth(lab: Lab, cli: Cli) -> None:
    # No fault in netops.lab.faults (the lab has no networkctl stand-in): the catch-all file
    # alone, with the networkd unit marked running by the systemctl stand-in.
    sh(lab, BAD, "systemctl start systemd-networkd && mkdir -p /etc/systemd/network && "
                 "printf '[Network]\\nDHCP=v4\\n' > /etc/systemd/network/zz-default.network")
    try:
        dry_fix_again(lab, cli, "networkd-unmanage-veth")
        assert "Unmanaged=yes" in sh(lab, BAD, "cat /etc/systemd/network/"
                                               "10-netops-unmanaged.network")
    finally:
        sh(lab, BAD, "rm -f /etc/systemd/network/*.network; systemctl stop systemd-networkd")


def etcd_dump(lab: Lab) -> str:
    """Both keyspaces under flannel's prefix, as etcdctl prints them."""
    out: list[str] = []
    for api, args in (("3", ["get", "--prefix", F.FLANNEL_PREFIX]),
                      ("2", ["ls", "--recursive", F.FLANNEL_PREFIX])):
        out.append(subprocess.run(["etcdctl", "--endpoints", str(lab.etcd_endpoint), *args],
                                  capture_output=True, text=True,
                                  env={**os.environ, "ETCDCTL_API": api}).stdout)
    return out[0] + "".join(sorted(out[1].splitlines(True)))  # v2 ls has no fixed order


FLANNEL_VARS = ("--var", "network=10.245.0.0/16", "--var", "drain=false")


@pytest.mark.parametrize("fault, args", [
    ("flannel-overlap", FLANNEL_VARS),
    ("flannel-overlap-v2", FLANNEL_VARS),
    ("flannel-config-v2-only", ("--var", "flannel_etcd_api=v3", "--var", "drain=false")),
])
def test_reset_flannel_subnet(lab: Lab, cli: Cli, fault: str, args: tuple[str, ...]) -> None:
    F.inject(lab, f"{fault}@{BAD}")
    if fault != "flannel-config-v2-only":
        # without a new network it only diagnoses: the overlapping node is broken
        diag = run(cli, "reset-flannel-subnet", "--dry-run")
        assert diag.statuses() == {GOOD: "ok", BAD: "failed"}, diag.stdout
        assert diag.json["before"][0]["stdout"].startswith("overlap ")
    etcd_before = etcd_dump(lab)
    real = dry_fix_again(lab, cli, "reset-flannel-subnet", *args)
    assert [s["status"] for s in real.json["before"]][:3] == ["ok", "changed", "changed"]
    assert etcd_dump(lab) != etcd_before
    want = "10.244.0.0/16" if fault == "flannel-config-v2-only" else "10.245.0.0/16"
    env = sh(lab, BAD, "cat /run/flannel/subnet.env")
    assert f"FLANNEL_NETWORK={want}" in env, env
    assert "cni0" not in sh(lab, BAD, "ip -o link show")
    # a new network that collides with docker0's is refused before anything changes
    refused = run(cli, "reset-flannel-subnet", "--yes", "--var", "network=172.17.0.0/16")
    assert refused.rc != 0 and refused.json["status"] == "halted"


@pytest.mark.parametrize("fault", ["cni-config-stale", "cni-config-missing"])
def test_check_cni_config(lab: Lab, cli: Cli, fault: str) -> None:
    F.inject(lab, f"{fault}@{BAD}")
    if fault == "cni-config-stale":
        dry_fix_again(lab, cli, "check-cni-config")
        assert sh(lab, BAD, "ls /etc/cni/net.d.netops-disabled").split() == [
            "10-calico.conflist"]
        return
    # Report only: nothing on the node can bring the config back (flannel's install-cni does).
    for args in (("--dry-run",), ("--yes",)):
        r = run(cli, "check-cni-config", *args)
        assert r.statuses() == {GOOD: "ok", BAD: "failed"}, r.stdout
        active = next(s for s in r.json["hosts"][BAD]["steps"] if s["id"] == "active")
        assert active["status"] == "failed" and "MISSING" in active["stdout"], active


def test_hairpin_mode(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"hairpin-off@{BAD}")
    dry_fix_again(lab, cli, "hairpin-mode")
    modes = sh(lab, BAD, "cat /sys/class/net/cni0/brif/*/hairpin_mode").split()
    assert modes and set(modes) == {"1"}
    assert '"hairpinMode": true' in sh(lab, BAD, "cat /etc/cni/net.d/10-flannel.conflist")


def test_check_conntrack_reports_only(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"conntrack-near-full@{BAD}")
    try:
        before = snapshot(lab)
        for args in (("--dry-run",), ("--yes",)):
            r = run(cli, "check-conntrack", *args, "--var", "sample_interval=1s")
            assert r.statuses() == {GOOD: "ok", BAD: "failed"}, r.stdout
        assert snapshot(lab) == before
    finally:
        sh(lab, BAD, "umount /proc/sys/net/netfilter/nf_conntrack_count")
