"""The Kubernetes-facing runbooks of issue 5 (selinux-cni-install, fix-node-resolv-conf,
check-nodelocaldns, check-kube-proxy-rules) against lab nodes broken by `faults_k8s`, with the
real kubectl against the lab's API stand-in.

For each runbook: chick1 stays healthy, chick2 gets the fault. `netops diagnose` flags chick2
and finds chick1 ok; a dry run reports would-change on chick2 only; neither changes the nodes
or the cluster (`snapshot` and `kube_snapshot` equal before and after); the real run fixes
chick2; after a reboot of chick2 (and its pods' start by the lab's kubelet) a second run
changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netops.lab import Lab
from netops.lab import faults as F
from netops.lab import faults_k8s as K
from tests.integration.helpers import (
    ALL_OK,
    FLAGGED,
    Cli,
    Result,
    evidence,
    healthy_cli,
    kube_snapshot,
    kubectl,
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
    yield from lab_for(tmp_path_factory.mktemp("library-k8s"), NAMES, 151)


@pytest.fixture
def cli(lab: Lab, tmp_path: Path) -> Cli:
    return healthy_cli(lab, tmp_path)


def diagnose(cli: Cli, runbook: str) -> Result:
    return cli("diagnose", "--json", "--runbook", runbook, timeout=300)


def until(what: str, test: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def cluster_view(lab: Lab) -> dict[str, object]:
    """kube_snapshot without the Node objects' Ready condition heartbeat fields (already
    dropped) — the whole snapshot must stay equal: nothing in it changes by itself while a
    node's state is steady (a pod whose init container fails again every 5 s keeps the same
    restart count and message; only dropped timestamps move)."""
    return kube_snapshot(lab)


def runbook_view(lab: Lab) -> dict[str, str]:
    """`snapshot` without /var/lib/netops (netops' own state, written by any real run)."""
    return {n: "".join(line for line in text.splitlines(True) if "/var/lib/netops" not in line)
            for n, text in snapshot(lab).items()}


def dry_fix(lab: Lab, cli: Cli, runbook: str, *args: str, why: str = "") -> Result:
    """diagnose flags BAD only and a dry run reports would-change on BAD only, neither changes
    the nodes or the cluster; the real run changes BAD only; diagnose then finds both ok."""
    before = snapshot(lab), cluster_view(lab)
    found = diagnose(cli, runbook)
    assert verdicts(found, runbook) == FLAGGED and found.rc == 1, found.stdout + found.stderr
    assert why in evidence(found, runbook), found.stdout
    dry = run(cli, runbook, "--dry-run", *args)
    assert dry.statuses() == {GOOD: "ok", BAD: "would-change"}, dry.stdout + dry.stderr
    after = snapshot(lab), cluster_view(lab)
    assert after[0] == before[0], "diagnose or a dry run changed a node"
    assert after[1] == before[1], "diagnose or a dry run changed the cluster"
    real = run(cli, runbook, "--yes", *args)
    assert real.rc == 0 and real.statuses() == {GOOD: "ok", BAD: "changed"}, \
        real.stdout + real.stderr
    again = diagnose(cli, runbook)
    assert again.rc == 0 and verdicts(again, runbook) == ALL_OK, again.stdout
    return real


def reboot_run_again(lab: Lab, cli: Cli, runbook: str, *args: str,
                     apps: tuple[str, ...] = ("node-local-dns", "kube-proxy")) -> None:
    """Reboot BAD, let the lab's kubelet start its pods, then a second run changes nothing."""
    lab.reboot(BAD)
    K.wait_started(lab, BAD, apps=apps, timeout=60)
    again = run(cli, runbook, "--yes", *args)
    assert again.rc == 0 and set(again.statuses().values()) == {"ok"}, \
        again.stdout + again.stderr


def pod_of(lab: Lab, node: str, app: str) -> dict[str, object]:
    pods = K.node_pods(lab, node, app)
    assert len(pods) == 1, pods
    return pods[0]


def test_standins_on_a_healthy_node(lab: Lab, cli: Cli) -> None:
    """getenforce/setenforce (RUNBOOKS.md section 3), node-cache and kube-proxy as the
    runbooks read them."""
    assert sh(lab, GOOD, "getenforce").strip() == "Permissive"
    assert sh(lab, GOOD, "setenforce 1 && getenforce").strip() == "Enforcing"
    assert sh(lab, GOOD, "setenforce 0; getenforce").strip() == "Permissive"
    bad = lab.node_exec(GOOD, "setenforce 2", check=False)
    assert bad.returncode == 1 and "usage:" in bad.stderr
    off = lab.node_exec(GOOD, "mv /etc/selinux/config /tmp/c && rm -f /run/netops-lab/selinux/"
                              "enforce; getenforce; setenforce 0; rc=$?; mv /tmp/c "
                              "/etc/selinux/config; exit $rc", check=False)
    assert off.stdout == "Disabled\n" and off.returncode == 1
    assert off.stderr == "setenforce: SELinux is disabled\n"
    out = sh(lab, GOOD, "ip -4 -o addr show dev nodelocaldns; iptables -t raw -S PREROUTING; "
                        "curl -s -w ' %{http_code}' http://169.254.25.10:8080/health; echo; "
                        "dig +short +time=2 +tries=1 @169.254.25.10 "
                        "kubernetes.default.svc.cluster.local; "
                        "curl -s 127.0.0.1:10249/proxyMode; echo; "
                        "iptables -t nat -S KUBE-SERVICES")
    assert " inet 169.254.25.10/32 " in out
    assert "-A PREROUTING -d 169.254.25.10/32 -p udp -m udp --dport 53 -j NOTRACK" in out
    assert "OK 200\n10.96.0.1\niptables\n" in out, out
    assert ('-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment '
            '"kube-system/kube-dns:dns cluster IP" -m udp --dport 53 '
            '-j KUBE-SVC-TCOU7JCQXEZGVUNU') in out
    # the API serves node-cache's log from its CRI file
    pod = pod_of(lab, GOOD, "node-local-dns")["metadata"]
    logs = kubectl(lab, "-n", "kube-system", "logs", str(pod["name"]), "-c", "node-cache").stdout
    assert "Added interface - nodelocaldns" in logs and "CoreDNS-1.10.1" in logs


def test_selinux_cni_install(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"selinux-enforcing@{BAD}")
    assert sh(lab, BAD, "getenforce").strip() == "Enforcing"
    flannel = pod_of(lab, BAD, "flannel")
    log = kubectl(lab, "-n", "kube-flannel", "logs", str(flannel["metadata"]["name"]),  # type: ignore[index]
                  "-c", "install-cni").stdout
    assert "cp: can't create '/etc/cni/net.d/10-flannel.conflist': Permission denied" in log
    # Without the opt-in: a report, nothing changes (but netops' own /var/lib/netops, which a
    # real run creates on each node).
    before = runbook_view(lab), cluster_view(lab)
    report = run(cli, "selinux-cni-install", "--yes")
    assert report.statuses() == {GOOD: "ok", BAD: "failed"}, report.stdout
    assert "accept_permissive" in report.stdout
    assert (runbook_view(lab), cluster_view(lab)) == before
    real = dry_fix(lab, cli, "selinux-cni-install", "--var", "accept_permissive=true",
                   why="opt_in")
    steps = {s["id"]: s["status"] for s in real.json["hosts"][BAD]["steps"]}
    assert steps["setenforce"] == steps["persist"] == steps["restart_flannel"] == "changed"
    assert sh(lab, BAD, "getenforce").strip() == "Permissive"
    assert "SELINUX=permissive" in sh(lab, BAD, "cat /etc/selinux/config")
    assert "SELINUX=enforcing" in sh(lab, BAD, "cat /etc/selinux/config.netops.bak")
    assert sh(lab, BAD, "test -s /etc/cni/net.d/10-flannel.conflist && echo yes").strip() \
        == "yes"
    assert kubectl(lab, "get", "node", BAD, "-o", "jsonpath={.status.conditions[?(@.type=="
                   '"Ready")].status}').stdout == "True"
    # At the next boot /etc/selinux/config says permissive: install-cni copies again.
    reboot_run_again(lab, cli, "selinux-cni-install", "--var", "accept_permissive=true",
                     apps=("flannel", "node-local-dns", "kube-proxy"))
    assert sh(lab, BAD, "getenforce").strip() == "Permissive"


@pytest.mark.parametrize("fault, why", [("resolv-conf-loopback", "LOOPBACK"),
                                        ("resolv-conf-too-many-nameservers", "TOO_MANY")])
def test_fix_node_resolv_conf(lab: Lab, cli: Cli, fault: str, why: str) -> None:
    F.inject(lab, f"{fault}@{BAD}")
    if fault == "resolv-conf-loopback" and K.node_pods(lab, BAD, "kube-dns"):
        # the node's new CoreDNS pod (if the scheduler put one there) forwards to itself
        def looped() -> bool:
            out = kubectl(lab, "-n", "kube-system", "logs", "-l", "k8s-app=kube-dns",
                          "--tail=50", check=False).stdout
            return "plugin/loop" in out
        until("CoreDNS's plugin/loop line", looped)
    def configmap() -> str:
        return kubectl(lab, "-n", "kube-system", "get", "configmap", "kubelet-config", "-o",
                       "jsonpath={.data.kubelet}").stdout
    loopback = fault == "resolv-conf-loopback"  # the cluster's kubeadm config says so too
    assert ("resolvConf: /run/systemd/resolve/stub-resolv.conf" in configmap()) == loopback
    real = dry_fix(lab, cli, "fix-node-resolv-conf", why=why)
    steps = {s["id"]: s["status"] for s in real.json["hosts"][BAD]["steps"]}
    assert steps["restart_kubelet"] == steps["restart_dns"] == "changed"
    assert steps["persist_configmap"] == ("changed" if loopback else "ok")
    assert "resolvConf: /run/systemd/resolve/resolv.conf\n" in configmap()
    conf = sh(lab, BAD, "grep ^resolvConf: /var/lib/kubelet/config.yaml")
    assert conf.strip() == "resolvConf: /run/systemd/resolve/resolv.conf"
    assert sh(lab, BAD, "test -e /var/lib/kubelet/config.yaml.netops.bak && echo yes") == "yes\n"
    # systemd-resolved writes its /run file again at boot: the fix holds.
    reboot_run_again(lab, cli, "fix-node-resolv-conf")
    assert sh(lab, BAD, "grep -c ^nameserver /run/systemd/resolve/resolv.conf").strip() == "1"


def test_fix_node_resolv_conf_is_not_held_up_by_another_nodes_coredns(lab: Lab,
                                                                      cli: Cli) -> None:
    """A CoreDNS pod on a node that is NotReady for its own reasons (here its CNI config is
    gone) is that node's trouble: the fix on BAD waits for the CoreDNS pods of Ready nodes
    only. It used to wait for every CoreDNS pod, and failed after 3 minutes."""
    def dns_on(node: str) -> list[str]:
        return kubectl(lab, "-n", "kube-system", "get", "pod", "-l", "k8s-app=kube-dns",
                       "--field-selector", f"spec.nodeName={node}", "-o", "name",
                       check=False).stdout.split()
    if not dns_on(BAD):  # both replicas on GOOD: one moves (the scheduler spreads them)
        kubectl(lab, "-n", "kube-system", "delete", dns_on(GOOD)[0], "--wait=true")
        until(f"a CoreDNS pod on {BAD}", lambda: bool(dns_on(BAD)))
    F.inject(lab, f"cni-config-missing@{GOOD}")

    def good_dns_not_ready() -> bool:
        out = kubectl(lab, "-n", "kube-system", "get", "pod", "-l", "k8s-app=kube-dns",
                      "--field-selector", f"spec.nodeName={GOOD}", "-o",
                      "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}",
                      check=False).stdout.split()
        return "False" in out
    until(f"{GOOD}'s CoreDNS pod not Ready", good_dns_not_ready, timeout=90)
    F.inject(lab, f"resolv-conf-too-many-nameservers@{BAD}")
    real = run(cli, "fix-node-resolv-conf", "--yes", "--nodes", BAD)
    steps = {s["id"]: s["status"] for s in real.json["hosts"][BAD]["steps"]}
    assert real.rc == 0 and steps["restart_dns"] == "changed" and steps["dns_ready"] == "ok", \
        real.stdout + real.stderr


@pytest.mark.parametrize("fault, why, chosen", [
    ("resolv-conf-stub-symlink", "LOOPBACK", "/run/systemd/resolve/resolv.conf"),
    ("resolv-conf-no-resolved", "MISSING", "/etc/resolv.conf")])
def test_fix_node_resolv_conf_picks_the_file_by_systemd_resolved(
        lab: Lab, cli: Cli, fault: str, why: str, chosen: str) -> None:
    """Seed 004: where systemd-resolved runs, /etc/resolv.conf is its stub (a symlink to
    stub-resolv.conf, 127.0.0.53) and the upstreams are in /run/systemd/resolve/resolv.conf;
    on a node without it, that file does not exist and /etc/resolv.conf is the real list.
    resolv_conf=auto picks per node, as kubeadm does, and persists to the cluster's ConfigMap
    only the cluster's rule (resolved's file), never one node's exception."""
    F.inject(lab, f"{fault}@{BAD}")
    real = dry_fix(lab, cli, "fix-node-resolv-conf", why=why)
    steps = {s["id"]: s for s in real.json["hosts"][BAD]["steps"]}
    assert steps["target"]["stdout"].splitlines()[-1] == chosen, steps["target"]
    conf = sh(lab, BAD, "grep ^resolvConf: /var/lib/kubelet/config.yaml")
    assert conf.strip() == f"resolvConf: {chosen}"
    resolved = chosen.startswith("/run/")
    assert steps["persist_configmap"]["status"] == ("ok" if resolved else "skipped")
    configmap = kubectl(lab, "-n", "kube-system", "get", "configmap", "kubelet-config", "-o",
                        "jsonpath={.data.kubelet}").stdout
    assert "resolvConf: /run/systemd/resolve/resolv.conf\n" in configmap
    reboot_run_again(lab, cli, "fix-node-resolv-conf")
    if resolved:  # the stub link is the distribution's, left as it was
        assert sh(lab, BAD, "readlink /etc/resolv.conf").strip() == \
            "../run/systemd/resolve/stub-resolv.conf"
    else:
        assert sh(lab, BAD, "test -e /run/systemd/resolve/resolv.conf || echo none") == "none\n"


def test_check_nodelocaldns(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"nodelocaldns-down@{BAD}")
    assert "nodelocaldns" not in sh(lab, BAD, "ip -o link show")
    old = pod_of(lab, BAD, "node-local-dns")["metadata"]["name"]  # type: ignore[index]
    real = dry_fix(lab, cli, "check-nodelocaldns", why="NOLINK")
    steps = {s["id"]: s["status"] for s in real.json["hosts"][BAD]["steps"]}
    assert steps["restart_cache"] == "changed" and steps["cache_back"] == "ok"
    assert pod_of(lab, BAD, "node-local-dns")["metadata"]["name"] != old  # type: ignore[index]
    got = sh(lab, BAD, "dig +short +time=2 +tries=1 @169.254.25.10 "
                       "kubernetes.default.svc.cluster.local")
    assert got.strip() == "10.96.0.1"
    reboot_run_again(lab, cli, "check-nodelocaldns")


def test_check_kube_proxy_rules(lab: Lab, cli: Cli) -> None:
    F.inject(lab, f"kube-proxy-rules-missing@{BAD}")
    assert lab.node_exec(BAD, "iptables -t nat -S KUBE-SERVICES", check=False).returncode == 1
    real = dry_fix(lab, cli, "check-kube-proxy-rules", why="DOWN")
    steps = {s["id"]: s for s in real.json["hosts"][BAD]["steps"]}
    assert steps["restart_proxy"]["status"] == "changed"
    assert steps["backends"]["rc"] == 0, steps["backends"]
    assert "-j KUBE-SVC-TCOU7JCQXEZGVUNU" in sh(lab, BAD, "iptables -t nat -S KUBE-SERVICES")
    reboot_run_again(lab, cli, "check-kube-proxy-rules")


def test_check_kube_proxy_rules_reads_the_backend_kube_proxy_writes(lab: Lab, cli: Cli) -> None:
    """kubernetes#71305: kube-proxy's image writes iptables-legacy on an nf_tables node. Its
    rules come back where the node's `iptables` never looks: the checks read them there and
    say so, the run fixes the node, and after a reboot nothing is called broken."""
    F.inject(lab, f"kube-proxy-legacy-rules-missing@{BAD}")
    real = dry_fix(lab, cli, "check-kube-proxy-rules", why="DOWN")
    steps = {s["id"]: s for s in real.json["hosts"][BAD]["steps"]}
    assert steps["restart_proxy"]["status"] == "changed"
    assert "rules read with iptables-legacy: kube-proxy writes legacy while the node's " \
        "iptables is nf_tables" in steps["proxy_back"]["stdout"], steps["proxy_back"]
    assert "-j KUBE-SVC-TCOU7JCQXEZGVUNU" in sh(lab, BAD, "iptables-legacy -t nat -S KUBE-SERVICES")
    assert lab.node_exec(BAD, "iptables -t nat -S KUBE-SERVICES", check=False).returncode == 1
    reboot_run_again(lab, cli, "check-kube-proxy-rules")


def test_kube_proxy_mixed_backends_reported(lab: Lab, cli: Cli) -> None:
    """KUBE- rules in the legacy tables next to nf_tables ones: reported (failed), not fixed."""
    lab.node_exec(BAD, "iptables-legacy -t nat -N KUBE-SERVICES")
    try:
        r = run(cli, "check-kube-proxy-rules", "--yes")
        assert r.statuses() == {GOOD: "ok", BAD: "failed"}, r.stdout
        mixed = next(s for s in r.json["hosts"][BAD]["steps"] if s["id"] == "mixed")
        assert "MIXED" in mixed["stdout"]
    finally:
        lab.node_exec(BAD, "iptables-legacy -t nat -X KUBE-SERVICES", check=False)
