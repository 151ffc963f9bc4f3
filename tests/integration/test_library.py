"""The runbook library (issue 4) against lab nodes broken by `netops.lab.faults`.

For each runbook: chick1 stays healthy, chick2 gets the fault. `netops diagnose` flags exactly
chick2 (broken) and finds chick1 ok; a dry run reports would-change (or, for report-only
findings, a failing check) on chick2 and ok on chick1; neither changes anything (node state and
etcd equal before and after); the real run fixes chick2 and diagnose then finds both nodes ok;
after a lab reboot of chick2 a second run is ok everywhere: it changes nothing, and the fix
survived the next boot. One lab for the module; each test starts from `faults.healthy`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netops.errors import UserError
from netops.lab import Lab
from netops.lab import faults as F
from tests.integration.helpers import (
    ALL_OK,
    FLAGGED,
    Cli,
    Result,
    evidence,
    healthy_cli,
    lab_for,
    sh,
    snapshot,
    verdicts,
)
from tests.integration.helpers import LIBRARY_NODES as NAMES
from tests.integration.helpers import run_all as run

pytestmark = pytest.mark.lab
GOOD, BAD = NAMES


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from lab_for(tmp_path_factory.mktemp("library"), NAMES, 121)


@pytest.fixture
def cli(lab: Lab, tmp_path: Path) -> Cli:
    return healthy_cli(lab, tmp_path)


def diagnose(cli: Cli, runbook: str) -> Result:
    r = cli("diagnose", "--json", "--runbook", runbook)
    all_ok = set(verdicts(r, runbook).values()) == {"ok"}
    assert r.rc == (0 if all_ok else 1), r.stdout + r.stderr
    return r


def finish(proc: subprocess.Popen[str]) -> Result:
    out, err = proc.communicate(timeout=120)
    return Result(proc.returncode, out, err)




def dry_fix(lab: Lab, cli: Cli, runbook: str, *args: str, why: str = "") -> Result:
    """diagnose flags BAD only (its evidence names `why`) and a dry run reports would-change on
    BAD only; both run at once between two snapshots (nodes, etcd) that must be equal. The real
    run changes BAD only; diagnose then finds every node ok. Returns the real run."""
    before = snapshot(lab), etcd_dump(lab)
    diag = cli.popen("diagnose", "--json", "--runbook", runbook)
    dry = run(cli, runbook, "--dry-run", *args)
    found = finish(diag)
    assert verdicts(found, runbook) == FLAGGED and found.rc == 1, found.stdout + found.stderr
    assert why in evidence(found, runbook), found.stdout
    assert dry.statuses() == {GOOD: "ok", BAD: "would-change"}, dry.stdout + dry.stderr
    assert (snapshot(lab), etcd_dump(lab)) == before, "diagnose or a dry run changed something"
    real = run(cli, runbook, "--yes", *args)
    assert real.rc == 0 and real.statuses() == {GOOD: "ok", BAD: "changed"}, \
        real.stdout + real.stderr
    assert verdicts(diagnose(cli, runbook), runbook) == ALL_OK
    return real


def reboot_run_again(lab: Lab, cli: Cli, runbook: str, *args: str) -> None:
    """Reboot the fixed node; a second real run then changes nothing anywhere: the runbook is
    idempotent and its fix survived the boot (a fix lost at boot would show `changed`)."""
    lab.reboot(BAD)
    again = run(cli, runbook, "--yes", *args)
    assert again.rc == 0 and set(again.statuses().values()) == {"ok"}, \
        again.stdout + again.stderr


def dry_fix_again(lab: Lab, cli: Cli, runbook: str, *args: str, why: str = "") -> Result:
    """`dry_fix`, then `reboot_run_again`: for tests with nothing to look at before the reboot."""
    real = dry_fix(lab, cli, runbook, *args, why=why)
    reboot_run_again(lab, cli, runbook, *args)
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
    r = cli("diagnose", "--json", *args, "--var", "check-conntrack.sample_interval=1s")
    cells = {(n, rb): c["status"] for n, row in r.json["nodes"].items() for rb, c in row.items()}
    assert r.rc == 0 and set(cells.values()) == {"ok"}, r.stdout
    assert len(cells) == len(NAMES) * len(LIBRARY)


def test_check_ip_forward_boot_override(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"ip-forward-boot-override@{BAD}")
    dry_fix_again(lab, cli, "check-ip-forward", why="zz-cis-hardening.conf")
    assert sh(lab, BAD, "sysctl -n net.ipv4.ip_forward").strip() == "1"


def test_check_ip_forward_keeps_debians_symlink(lab: Lab, cli: Cli) -> None:
    """Issue 18: the conflicting line is in /etc/sysctl.conf, seen twice (through Debian's
    99-sysctl.conf -> ../sysctl.conf and as itself). It is commented out once, in the real
    file; the link stays a link, and the backup holds the real text (not a second link)."""
    F.inject(lab, f"ip-forward-sysctl-conf@{BAD}")
    link = "/etc/sysctl.d/99-sysctl.conf"
    assert sh(lab, BAD, f"readlink {link}").strip() == "../sysctl.conf"
    real = dry_fix(lab, cli, "check-ip-forward", why="sysctl.conf")
    step = next(s for s in real.json["hosts"][BAD]["steps"] if s["id"] == "ip_forward")
    assert step["command"].count("sed -i") == 1 and "/etc/sysctl.conf" in step["command"], step
    assert sh(lab, BAD, f"readlink {link}").strip() == "../sysctl.conf", "the link was replaced"
    assert sh(lab, BAD, f"ls {link}.netops.bak 2>/dev/null || true") == ""
    assert "# netops: net.ipv4.ip_forward = 0" in sh(lab, BAD, "cat /etc/sysctl.conf")
    backup = "/etc/sysctl.conf.netops.bak"
    assert sh(lab, BAD, f"test -f {backup} && ! test -L {backup} && echo regular") == "regular\n"
    assert "\nnet.ipv4.ip_forward = 0\n" in sh(lab, BAD, f"cat {backup}")
    reboot_run_again(lab, cli, "check-ip-forward")
    assert sh(lab, BAD, "sysctl -n net.ipv4.ip_forward").strip() == "1"
    assert sh(lab, BAD, f"readlink {link}").strip() == "../sysctl.conf"


def test_check_bridge_nf(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"bridge-nf-off@{BAD}")
    dry_fix(lab, cli, "check-bridge-nf", why="nf_iptables: runtime 0 -> 1")
    keys = "sysctl -n net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables"
    assert sh(lab, BAD, keys).split() == ["1", "1"]
    reboot_run_again(lab, cli, "check-bridge-nf")
    assert sh(lab, BAD, keys).split() == ["1", "1"]


@pytest.mark.parametrize("fault", ["forward-drop", "docker-dropin-no-service"])
def test_iptables_forward_accept(lab: Lab, cli: Cli, fault: str) -> None:
    F.inject(lab, f"{fault}@{BAD}")
    assert sh(lab, BAD, "iptables -S FORWARD | head -n1").strip() == "-P FORWARD DROP"
    real = dry_fix(lab, cli, "iptables-forward-accept", why="accept_from_pods")
    steps = {s["id"]: s["status"] for s in real.json["hosts"][BAD]["steps"]}
    assert steps["accept_from_pods"] == steps["accept_to_pods"] == "changed"
    assert steps["disable_ignored"] == ("changed" if fault == "docker-dropin-no-service"
                                        else "skipped")
    rules = sh(lab, BAD, "iptables -S FORWARD")
    assert "-A FORWARD -s 10.244.0.0/16 -j ACCEPT" in rules, rules
    assert "-P FORWARD DROP" in rules, "docker must not be restarted by the runbook"
    # The next docker start (here: a reboot) keeps FORWARD open through the drop-in.
    reboot_run_again(lab, cli, "iptables-forward-accept")
    assert sh(lab, BAD, "iptables -S FORWARD | head -n1").strip() == "-P FORWARD ACCEPT"


LEGACY_FILTER = "iptables-legacy -S"  # rules and policies, no counters
DROPIN = "/etc/systemd/system/docker.service.d/10-netops-forward.conf"


def test_iptables_forward_accept_legacy_docker(lab: Lab, cli: Cli) -> None:
    """Issue 18, mixed backends: docker writes iptables-legacy on an nf_tables node, and the
    provisioning drop-in re-opens only nf_tables' FORWARD. With a DROP in nf_tables too (a
    firewall script), the findings name both backends; the dry run changes neither; the run
    puts the pod-CIDR accepts into both and a drop-in running iptables-legacy (docker's
    backend); after a reboot legacy FORWARD is open and a re-run changes nothing."""
    F.inject(lab, f"forward-drop-legacy@{BAD}")
    assert sh(lab, BAD, "iptables -V").split()[-1] == "(nf_tables)"
    assert sh(lab, BAD, "iptables-legacy -S FORWARD | head -n1").strip() == "-P FORWARD DROP"
    assert "-N DOCKER" in sh(lab, BAD, "iptables-legacy -S")
    assert "-N DOCKER" not in sh(lab, BAD, "iptables -S")
    sh(lab, BAD, "iptables -P FORWARD DROP")
    legacy = sh(lab, BAD, LEGACY_FILTER)

    dry = run(cli, "iptables-forward-accept", "--dry-run")
    steps = {s["id"]: s for s in dry.json["hosts"][BAD]["steps"]}
    assert ("FORWARD DROP in iptables-nft (the node's iptables) and iptables-legacy (docker "
            "writes there)") in steps["runtime"]["note"], steps["runtime"]
    assert "in iptables-legacy (docker writes there): no [Service]" in \
        steps["persisted"]["note"], steps["persisted"]
    assert "/usr/sbin/iptables (nf_tables)" in steps["persisted"]["stdout"], "the wrong backend"
    assert "+ExecStartPost=/sbin/iptables-legacy -P FORWARD ACCEPT" in steps["dropin_file"]["diff"]
    assert sh(lab, BAD, LEGACY_FILTER) == legacy, "the dry run changed the legacy tables"

    real = dry_fix(lab, cli, "iptables-forward-accept",
                   why="FORWARD DROP in iptables-nft (the node's iptables) and iptables-legacy")
    steps = {s["id"]: s for s in real.json["hosts"][BAD]["steps"]}
    assert steps["accept_from_pods"]["stdout"].split("\n")[:2] == [
        "iptables-nft: -I FORWARD 1 -s 10.244.0.0/16 -j ACCEPT",
        "iptables-legacy: -I FORWARD 1 -s 10.244.0.0/16 -j ACCEPT"], steps["accept_from_pods"]
    for ipt in ("iptables-nft", "iptables-legacy"):
        rules = sh(lab, BAD, f"{ipt} -S FORWARD").splitlines()
        assert rules[0] == "-P FORWARD DROP", "docker must not be restarted by the runbook"
        assert {"-A FORWARD -s 10.244.0.0/16 -j ACCEPT",
                "-A FORWARD -d 10.244.0.0/16 -j ACCEPT"} <= set(rules), (ipt, rules)
    dropin = [ln for ln in sh(lab, BAD, f"cat {DROPIN}").splitlines() if ln[:1] != "#"]
    assert dropin == ["[Service]", "ExecStartPost=/sbin/iptables-legacy -P FORWARD ACCEPT"]
    assert steps["verify_persisted"]["stdout"].strip() == (
        f"iptables-legacy (docker writes there): persisted by {DROPIN} (/sbin/iptables-legacy)")

    reboot_run_again(lab, cli, "iptables-forward-accept")
    assert sh(lab, BAD, "iptables-legacy -S FORWARD | head -n1").strip() == "-P FORWARD ACCEPT"
    assert "-N DOCKER" in sh(lab, BAD, "iptables-legacy -S"), "docker started on legacy"


def test_iptables_forward_accept_nft_docker_on_legacy_node(lab: Lab, cli: Cli) -> None:
    """The reverse: the node's `iptables` is legacy (its alternatives), docker writes
    nf_tables, and the provisioning drop-in's `/usr/sbin/iptables` now re-opens legacy only.
    Set up here, not as a lab fault: every other runbook would follow the node's `iptables` to
    legacy and miss kube-proxy's and node-local-dns's nf_tables rules. `healthy` puts the
    alternatives back (keep_original)."""
    alts = [f"/etc/alternatives/iptables{x}" for x in ("", "-save", "-restore")]
    sh(lab, BAD, F.keep_original(*alts)
       + "".join(f"ln -sfn /usr/sbin/iptables-legacy{x} {a}\n"
                 for x, a in zip(("", "-save", "-restore"), alts, strict=True))
       + f"rm -f {DROPIN}\necho nft > /etc/netops-lab/docker-iptables\n"
       + "for d in -s -d; do\n"
         "  while iptables-nft -D FORWARD $d 10.244.0.0/16 -j ACCEPT 2>/dev/null; do :; done\n"
         "done\nsystemctl daemon-reload && systemctl restart docker\n")
    assert sh(lab, BAD, "iptables -V").split()[-1] == "(legacy)"
    assert sh(lab, BAD, "iptables-nft -S FORWARD | head -n1").strip() == "-P FORWARD DROP"
    assert sh(lab, BAD, "iptables -S FORWARD | head -n1").strip() == "-P FORWARD ACCEPT"

    real = dry_fix(lab, cli, "iptables-forward-accept",
                   why="FORWARD DROP in iptables-nft (docker writes there), no ACCEPT rules")
    steps = {s["id"]: s for s in real.json["hosts"][BAD]["steps"]}
    assert steps["accept_to_pods"]["stdout"] == \
        "iptables-nft: -I FORWARD 1 -d 10.244.0.0/16 -j ACCEPT\n", steps["accept_to_pods"]
    dropin = [ln for ln in sh(lab, BAD, f"cat {DROPIN}").splitlines() if ln[:1] != "#"]
    assert dropin == ["[Service]", "ExecStartPost=/sbin/iptables-nft -P FORWARD ACCEPT"]
    reboot_run_again(lab, cli, "iptables-forward-accept")
    assert sh(lab, BAD, "iptables-nft -S FORWARD | head -n1").strip() == "-P FORWARD ACCEPT"


def test_flush_stale_ipam(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"stale-ipam@{BAD}")
    listing = "ls /var/lib/cni/networks/cbr0"
    assert len(sh(lab, BAD, listing).split()) == 10
    # diagnose (default cordon=true) stops at the controller's kubectl (no API server in the
    # lab), but its evidence still names what the node check found.
    dry_fix(lab, cli, "flush-stale-ipam", "--var", "cordon=false", why="leaked: ")
    # live pods (.2, .3), the exited sandbox (.4) and host-local's own files stay
    kept = ["10.244.2.2", "10.244.2.3", "10.244.2.4", "last_reserved_ip.0", "lock"]
    assert sh(lab, BAD, listing).split() == kept
    assert "cni-ipam-chick2-" in sh(lab, BAD, "ls /var/backups")
    assert sh(lab, BAD, "systemctl is-active kubelet").strip() == "active"
    reboot_run_again(lab, cli, "flush-stale-ipam", "--var", "cordon=false")
    assert sh(lab, BAD, listing).split() == kept


HOST_LOCAL = Path("/usr/lib/cni/host-local")
"""The real host-local IPAM plugin (Debian: containernetworking-plugins); the host's /usr is the
nodes' /usr."""


def host_local(lab: Lab, command: str, container: str) -> subprocess.CompletedProcess[str]:
    """CNI ADD or DEL through the real host-local plugin inside BAD, on flannel's network:
    allocations in /var/lib/cni/networks/cbr0, from a range of six addresses (.2-.7)."""
    subnet = F.pod_subnet(lab, BAD)
    conf = {"cniVersion": "1.0.0", "name": F.CNI_NET,
            "ipam": {"type": "host-local", "subnet": str(subnet),
                     "rangeStart": str(subnet.network_address + 2),
                     "rangeEnd": str(subnet.network_address + 7),
                     "dataDir": F.IPAM_DIR.rsplit("/", 1)[0]}}
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_IFNAME": "eth0",
           "CNI_NETNS": f"/var/run/netns/cni-{container[:8]}", "CNI_PATH": str(HOST_LOCAL.parent)}
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return lab.node_exec(BAD, f"printf '%s' {shlex.quote(json.dumps(conf))} | "
                              f"env {assigns} {HOST_LOCAL}", check=False)


def allocate(lab: Lab, container: str) -> str:
    done = host_local(lab, "ADD", container)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(json.loads(done.stdout)["ips"][0]["address"]).split("/")[0]


@pytest.mark.skipif(not HOST_LOCAL.exists(), reason="no host-local plugin "
                    "(Debian: containernetworking-plugins)")
def test_flush_stale_ipam_real_host_local(lab: Lab, cli: Cli) -> None:
    """Allocations made by the real plugin: the runbook removes exactly the leaked ones, and
    the plugin, out of addresses before, allocates again after."""
    sh(lab, BAD, f"rm -rf {F.IPAM_DIR}")  # from here on, only what host-local writes
    # A pod deleted properly: its DEL released the address.
    gone = F.sandbox_id(BAD, "deleted-pod")
    allocate(lab, gone)
    assert host_local(lab, "DEL", gone).returncode == 0
    # Live sandboxes: coredns's pause container in docker (from `healthy`), and two CRI pods
    # (crictl stand-in), one NotReady: a sandbox that still exists keeps its address.
    coredns = F.sandbox_id(BAD, "coredns-5d78c9869d-x7k2p")
    ready, notready = (F.sandbox_id(BAD, p) for p in ("web-cri-ready", "web-cri-notready"))
    pods = [{"id": i, "name": n, "namespace": "default", "uid": f"{i[:8]}-uid", "attempt": 0,
             "state": st, "created": 1700000000}
            for i, n, st in ((ready, "web-cri-ready", "SANDBOX_READY"),
                             (notready, "web-cri-notready", "SANDBOX_NOTREADY"))]
    state = lab.node_path(BAD, "/var/lib/crictl-standin/state.json")
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"pods": pods, "containers": []}))
    leaked = [F.sandbox_id(BAD, f"leaked-{i}") for i in range(3)]
    ips = {c: allocate(lab, c) for c in (coredns, ready, leaked[0], notready, *leaked[1:])}
    live = sorted(ips[c] for c in (coredns, ready, notready))
    # The range is full: the seed's symptom, as the real plugin reports it.
    new = F.sandbox_id(BAD, "web-new-pod")
    full = host_local(lab, "ADD", new)
    assert full.returncode != 0 and "no IP addresses available in range set: " \
        "10.244.2.2-10.244.2.7" in full.stdout, full.stdout
    # Today's on-disk format: "<id>\r\n<ifname>", no final newline.
    assert lab.node_path(BAD, f"{F.IPAM_DIR}/{ips[coredns]}").read_bytes() == \
        f"{coredns}\r\neth0".encode()
    listing = f"ls {F.IPAM_DIR}"
    assert sh(lab, BAD, listing).split() == sorted([*ips.values(), "last_reserved_ip.0", "lock"])
    dry_fix(lab, cli, "flush-stale-ipam", "--var", "cordon=false")
    assert sh(lab, BAD, listing).split() == [*live, "last_reserved_ip.0", "lock"]
    # A new pod gets an address again: one the leaks held.
    assert allocate(lab, new) in {ips[c] for c in leaked}
    assert host_local(lab, "DEL", new).returncode == 0
    reboot_run_again(lab, cli, "flush-stale-ipam", "--var", "cordon=false")
    assert sh(lab, BAD, listing).split() == [*live, "last_reserved_ip.0", "lock"]


def networkctl(lab: Lab, node: str) -> dict[str, str]:
    """link -> SETUP, from the networkctl stand-in (`IDX LINK TYPE OPERATIONAL SETUP`)."""
    rows = [line.split() for line in sh(lab, node, "networkctl list --no-legend").splitlines()]
    assert all(len(r) == 5 for r in rows), rows
    return {r[1]: r[4] for r in rows}


def virtual_setups(lab: Lab, node: str) -> set[str]:
    """SETUP of the node's pod veths and cni0 (at least one of each must exist)."""
    setups = networkctl(lab, node)
    links = [n for n in setups if n.startswith("veth")] + ["cni0"]
    return {setups[n] for n in links}


def test_networkctl_standin(lab: Lab, cli: Cli) -> None:
    """RUNBOOKS.md section 3's format; SETUP as networkd matches .network files."""
    out = sh(lab, BAD, "networkctl list").split("\n")
    links = sh(lab, BAD, "ip -o link show | cut -d: -f1,2 | cut -d@ -f1").splitlines()
    assert out[0] == "IDX LINK             TYPE     OPERATIONAL SETUP"
    assert out[-3:] == ["", f"{len(links)} links listed.", ""], out
    rows = out[1:-3]
    assert [r.split()[:2] for r in rows] == [[i.strip() for i in x.split(":")] for x in links]
    assert rows[0] == "  1 lo               loopback carrier     unmanaged", rows
    assert sh(lab, BAD, "networkctl --no-legend").splitlines() == rows
    # healthy: the uplink's file matches eth0 only
    assert networkctl(lab, BAD)["eth0"] == "configured" and virtual_setups(lab, BAD) == {
        "unmanaged"}
    d = "/etc/systemd/network"
    write = "printf '[Match]\\nName={0}\\n[Link]\\nUnmanaged={1}\\n' > " + d + "/{2}.network"
    # the first file in lexical order wins: 20- (unmanaged) before 30- (managed)
    sh(lab, BAD, write.format("veth* cni0", "no", "30-managed") + " && "
       + write.format("veth* cni0", "yes", "20-unmanaged"))
    assert virtual_setups(lab, BAD) == {"unmanaged"}
    # masked (a link to /dev/null, or empty): skipped, so 30- applies
    for mask in (f"ln -sf /dev/null {d}/20-unmanaged.network", f": > {d}/20-unmanaged.network"):
        sh(lab, BAD, mask)
        assert virtual_setups(lab, BAD) == {"configured"}, mask
    # a glob that does not fit, then no [Match] at all (fits every link)
    sh(lab, BAD, f"rm {d}/20-unmanaged.network && " + write.format("vethx*", "no", "30-managed"))
    assert virtual_setups(lab, BAD) == {"unmanaged"}
    sh(lab, BAD, f"printf '[Network]\\nDHCP=v4\\n' > {d}/zz-default.network")
    assert set(networkctl(lab, BAD).values()) == {"configured"}
    # networkd stopped: no state to show
    sh(lab, BAD, "systemctl stop systemd-networkd")
    done = lab.node_exec(BAD, "networkctl list --no-legend")
    assert "systemd-networkd is not running" in done.stderr
    assert {r.split()[4] for r in done.stdout.splitlines()} == {"n/a"}


def test_networkd_unmanage_veth(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"networkd-catchall@{BAD}")
    # networkd's own view: the catch-all files configure the pod veth and cni0 on BAD only
    assert (virtual_setups(lab, GOOD), virtual_setups(lab, BAD)) == ({"unmanaged"},
                                                                     {"configured"})
    real = dry_fix(lab, cli, "networkd-unmanage-veth", why="10-netops-unmanaged.network")
    steps = {s["id"]: s for s in real.json["hosts"][BAD]["steps"]}
    # the runbook's networkctl check read the stand-in: broken before, fine after
    assert steps["networkctl_setup"]["rc"] == 1 and {
        "SETUP configured: cni0"} < set(steps["networkctl_setup"]["stdout"].splitlines())
    assert steps["verify_networkctl"]["rc"] == 0 and steps["reload"]["status"] == "changed"
    assert virtual_setups(lab, BAD) == {"unmanaged"}
    assert networkctl(lab, BAD)["eth0"] == "configured", "the uplink stays with its file"
    reboot_run_again(lab, cli, "networkd-unmanage-veth")
    # after the boot, networkd runs again and the links of a new pod are left alone
    F.add_pod(lab, BAD, "coredns-5d78c9869d-x7k2p", 2)
    assert sh(lab, BAD, "systemctl is-active systemd-networkd").strip() == "active"
    assert virtual_setups(lab, BAD) == {"unmanaged"}


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
    ("flannel-config-v3-only", FLANNEL_VARS),
])
def test_reset_flannel_subnet(lab: Lab, cli: Cli, fault: str, args: tuple[str, ...]) -> None:
    F.inject(lab, f"{fault}@{BAD}")
    etcd_before = etcd_dump(lab)
    # diagnose runs without --var network: it only diagnoses (an overlapping node is broken)
    why = "" if fault == "flannel-config-v2-only" else "node_overlap: rc 1, expected 0: OVERLAP"
    if fault == "flannel-config-v3-only":  # issue 18: auto follows the v2 daemons and leases
        why = "only in the v3 keyspace: flannel reading v2 does not see it"
    real = dry_fix(lab, cli, "reset-flannel-subnet", *args, why=why)
    assert [s["status"] for s in real.json["before"]][:3] == ["ok", "changed", "changed"]
    plan = real.json["before"][0]["stdout"].splitlines()
    assert plan[0].split()[1] == ("v2" if fault in ("flannel-overlap-v2",
                                                    "flannel-config-v3-only") else "v3"), plan
    assert etcd_dump(lab) != etcd_before
    want = "10.244.0.0/16" if fault == "flannel-config-v2-only" else "10.245.0.0/16"
    env = sh(lab, BAD, "cat /run/flannel/subnet.env")
    assert f"FLANNEL_NETWORK={want}" in env, env
    assert "cni0" not in sh(lab, BAD, "ip -o link show")
    # a new network that collides with docker0's is refused before anything changes
    refused = run(cli, "reset-flannel-subnet", "--yes", "--var", "network=172.17.0.0/16")
    assert refused.rc != 0 and refused.json["status"] == "halted"
    # flanneld starts at boot from the new config in etcd: the node keeps its new lease
    reboot_run_again(lab, cli, "reset-flannel-subnet", *args)
    env = sh(lab, BAD, "cat /run/flannel/subnet.env")
    assert f"FLANNEL_NETWORK={want}" in env, env


@pytest.mark.parametrize("fault, api, why", [
    # auto cannot tell: no lease anywhere (the v3 flanneld finds no config); the plan
    # refuses before etcd is written
    ("flannel-config-v2-only", "auto", "no live flannel lease in either keyspace"),
    # told v3, but the node's flanneld holds its lease in v2: it would never see the config
    ("flannel-overlap-v2", "v3", "holds its lease in the v2 keyspace, the plan writes v3"),
])
def test_reset_flannel_subnet_never_stops_kubelet_blind(lab: Lab, cli: Cli, fault: str,
                                                        api: str, why: str) -> None:
    """Issue 18: a reset that the node's flanneld cannot follow is refused on that node
    before anything there changes (drain, kubelet, links); the rollout halts."""
    F.inject(lab, f"{fault}@{BAD}")
    before, etcd_before = snapshot(lab)[BAD], etcd_dump(lab)
    r = run(cli, "reset-flannel-subnet", "--yes", "--var", "drain=false", "--var",
            "network=10.245.0.0/16", "--var", f"flannel_etcd_api={api}")
    assert r.rc == 1 and r.json["status"] in ("halted", "failed"), r.stdout + r.stderr
    if api == "auto":
        plan = r.json["before"][0]
        assert plan["status"] == "failed" and why in plan["stdout"], plan
        assert etcd_dump(lab) == etcd_before, "the refused plan wrote to etcd"
    else:
        gate = next(s for s in r.json["hosts"][BAD]["steps"]
                    if s["id"] == "flanneld_reads_plan")
        assert gate["status"] == "failed" and why in gate["stdout"], gate
    stopped = [x for x in r.json["hosts"][BAD]["steps"] if x["id"] == "stop_kubelet"]
    assert all(x["status"] in ("not-run", "skipped") for x in stopped), stopped
    assert sh(lab, BAD, "systemctl is-active kubelet").strip() == "active"
    after = snapshot(lab)[BAD]
    assert [x for x in after.splitlines() if "/var/lib/netops" not in x] == \
        [x for x in before.splitlines() if "/var/lib/netops" not in x]


def test_reset_flannel_subnet_etcd_without_v2(lab: Lab, cli: Cli) -> None:
    """Issue 18: etcd runs without the v2 API under a v2 flanneld: the finding says so, and
    nothing is reset (report only)."""
    F.inject(lab, f"flannel-etcd-v2-off@{BAD}")
    try:
        assert not lab.etcd_v2
        found = diagnose(cli, "reset-flannel-subnet")
        assert verdicts(found, "reset-flannel-subnet") == FLAGGED
        assert "etcd serves no v2 API (--enable-v2=false" in evidence(
            found, "reset-flannel-subnet"), found.stdout
        told = run(cli, "reset-flannel-subnet", "--yes", "--var", "flannel_etcd_api=v2",
                   "--var", "network=10.245.0.0/16", "--var", "drain=false")
        assert told.rc == 1 and "REFUSED: flannel reads v2, which this etcd does not serve" \
            in told.json["before"][0]["stdout"], told.stdout
    finally:
        F.healthy(lab, BAD)
    assert lab.etcd_v2


@pytest.mark.parametrize("fault", ["cni-config-stale", "cni-config-missing"])
def test_check_cni_config(lab: Lab, cli: Cli, fault: str) -> None:
    F.inject(lab, f"{fault}@{BAD}")
    if fault == "cni-config-stale":
        dry_fix_again(lab, cli, "check-cni-config", why="move_stale")
        assert sh(lab, BAD, "ls /etc/cni/net.d.netops-disabled").split() == [
            "10-calico.conflist"]
        return
    # Report only: nothing on the node can bring the config back (flannel's install-cni does).
    before = snapshot(lab)
    diag = cli.popen("diagnose", "--json", "--runbook", "check-cni-config")
    runs = [run(cli, "check-cni-config", "--dry-run")]
    found = finish(diag)
    runs.append(run(cli, "check-cni-config", "--yes"))
    assert verdicts(found, "check-cni-config") == FLAGGED, found.stdout
    assert "MISSING" in evidence(found, "check-cni-config")
    for r in runs:
        assert r.statuses() == {GOOD: "ok", BAD: "failed"}, r.stdout
        active = next(s for s in r.json["hosts"][BAD]["steps"] if s["id"] == "active")
        assert active["status"] == "failed" and "MISSING" in active["stdout"], active
    assert snapshot(lab) == before
    # Still missing after a reboot; once install-cni has copied it back, every node is ok.
    lab.reboot(BAD)
    assert verdicts(diagnose(cli, "check-cni-config"), "check-cni-config") == FLAGGED
    F.healthy(lab, BAD)
    assert verdicts(diagnose(cli, "check-cni-config"), "check-cni-config") == ALL_OK


def test_hairpin_mode(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"hairpin-off@{BAD}")
    dry_fix(lab, cli, "hairpin-mode", why="hairpin_on")
    modes = sh(lab, BAD, "cat /sys/class/net/cni0/brif/*/hairpin_mode").split()
    assert modes and set(modes) == {"1"}
    conflist = "cat /etc/cni/net.d/10-flannel.conflist"
    assert '"hairpinMode": true' in sh(lab, BAD, conflist)
    # the CNI config keeps hairpinMode: pods created after the reboot get hairpin ports
    reboot_run_again(lab, cli, "hairpin-mode")
    assert '"hairpinMode": true' in sh(lab, BAD, conflist)


def test_check_conntrack_reports_only(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"conntrack-near-full@{BAD}")
    try:
        before = snapshot(lab)
        # diagnose samples insert_failed over the default 10 s: it runs alongside both runs
        diag = cli.popen("diagnose", "--json", "--runbook", "check-conntrack")
        for args in (("--dry-run",), ("--yes",)):
            r = run(cli, "check-conntrack", *args, "--var", "sample_interval=1s")
            assert r.statuses() == {GOOD: "ok", BAD: "failed"}, r.stdout
        found = finish(diag)
        assert verdicts(found, "check-conntrack") == FLAGGED, found.stdout
        assert "nf_conntrack_count" in evidence(found, "check-conntrack")
        assert snapshot(lab) == before
        # The fault is a bind mount on /run (a tmpfs): gone after a reboot, and every node is
        # ok (diagnose's dry run, with a shorter sample than its default 10 s).
        lab.reboot(BAD)
        r = run(cli, "check-conntrack", "--dry-run", "--var", "sample_interval=1s")
        assert r.rc == 0 and set(r.statuses().values()) == {"ok"}, r.stdout
    finally:
        lab.node_exec(BAD, "umount /proc/sys/net/netfilter/nf_conntrack_count", check=False)
