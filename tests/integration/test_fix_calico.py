"""fix-calico (seed 000) end to end: the real kubectl against the lab's API stand-in, felix
stand-ins writing CRI logs on real sshd nodes, real reboots.

chick10 stays healthy; the seed's silent calico-node is injected on chick11 and/or chick12.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from netops.lab import Lab
from netops.lab import faults as F
from tests.integration.helpers import Cli, Result, kube_snapshot, kubectl, lab_for, snapshot

pytestmark = pytest.mark.lab
NAMES = ["chick10", "chick11", "chick12"]
FAST = ("--var", "settle=4s", "--var", "fresh_within=3s", "--pause", "1s")
STAGE_B = ["cordon", "drain", "save_logs", "prune", "reboot", "uncordon"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from lab_for(tmp_path_factory.mktemp("calico"), NAMES, 141)


@pytest.fixture
def cli(lab: Lab, tmp_path: Path) -> Cli:
    """Every node healthy and schedulable, no bare pods left, before each test."""
    for pod in kubectl(lab, "get", "pods", "-o", "name").stdout.split():
        if pod.startswith("pod/debug-"):
            kubectl(lab, "delete", pod)
    for name in NAMES:
        kubectl(lab, "uncordon", name)
        F.healthy(lab, name)
    return Cli(lab, tmp_path)


def unschedulable(lab: Lab, node: str) -> bool:
    out = kubectl(lab, "get", "node", node, "-o", "jsonpath={.spec.unschedulable}").stdout
    return out.strip() == "true"


def log_age(lab: Lab, node: str) -> float:
    """Seconds since calico-node's newest log line on `node`, through kubectl logs."""
    pod = kubectl(lab, "-n", "kube-system", "get", "pod", "-l", "k8s-app=calico-node",
                  "--field-selector", f"spec.nodeName={node}", "-o", "name").stdout.strip()
    line = kubectl(lab, "-n", "kube-system", "logs", pod, "-c", "calico-node", "--tail=1",
                   "--timestamps").stdout
    stamp = datetime.strptime(line.split()[0][:26], "%Y-%m-%dT%H:%M:%S.%f")
    return time.time() - stamp.replace(tzinfo=UTC).timestamp()


def boot_id(lab: Lab, node: str) -> str:
    return lab.node_exec(node, "cat /proc/sys/kernel/random/boot_id").stdout.strip()


def statuses(r: Result, host: str) -> dict[str, str]:
    return {s["id"]: s["status"] for s in r.json["hosts"][host]["steps"]}


def test_real_kubectl_drives_the_api(lab: Lab, cli: Cli) -> None:
    nodes = kubectl(lab, "get", "nodes").stdout.splitlines()
    assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [line.split()[:2] for line in nodes[1:]] == [[n, "Ready"] for n in NAMES]
    assert kubectl(lab, "cordon", "chick10").stdout.strip() == "node/chick10 cordoned"
    assert kubectl(lab, "cordon", "chick10").stdout.strip() == "node/chick10 already cordoned"
    assert "Ready,SchedulingDisabled" in kubectl(lab, "get", "node", "chick10").stdout
    drained = kubectl(lab, "drain", "chick10", "--ignore-daemonsets",
                      "--delete-emptydir-data", "--timeout=60s")
    # kubectl >= 1.22 says "drained"; Debian 12's kubectl 1.20 says "evicted".
    assert drained.stdout.splitlines()[-1] in ("node/chick10 drained", "node/chick10 evicted")
    on10 = kubectl(lab, "get", "pods", "-A", "--field-selector", "spec.nodeName=chick10",
                   "-o", "json").stdout
    owners = {p["metadata"]["ownerReferences"][0]["kind"] for p in json.loads(on10)["items"]}
    assert owners == {"DaemonSet"}, "drain leaves only DaemonSet pods"
    assert kubectl(lab, "uncordon", "chick10").stdout.strip() == "node/chick10 uncordoned"
    ready = kubectl(lab, "get", "node", "chick10", "-o",
                    'jsonpath={.status.conditions[?(@.type=="Ready")].message}').stdout
    assert ready == "kubelet is posting ready status"
    # A node whose sshd is down is NotReady, with the kubelet's message.
    lab.stop_sshd("chick10")
    try:
        kubectl(lab, "wait", "--for=condition=Ready=Unknown", "node/chick10", "--timeout=10s")
    finally:
        lab.start_sshd("chick10")
    kubectl(lab, "wait", "--for=condition=Ready", "node/chick10", "--timeout=10s")


def test_dry_run_plans_stage_b_and_touches_nothing(lab: Lab, cli: Cli) -> None:
    F.inject(lab, "calico-silent@chick12")
    nodes_before, cluster_before = snapshot(lab), kube_snapshot(lab)
    r = cli("run", "fix-calico", "--nodes", "chick11,chick12", "--dry-run", "--json")
    assert r.rc == 0, r.stderr
    assert r.statuses() == {"chick11": "ok", "chick12": "would-change"}
    bad = statuses(r, "chick12")
    assert bad["calico_silent"] == "ok"  # the check ran and found the node silent:
    silent = next(s for s in r.json["hosts"]["chick12"]["steps"] if s["id"] == "calico_silent")
    age = int(re.search(r"newest log line (\d+)s old", silent["stdout"]).group(1))  # type: ignore[union-attr]
    assert silent["finding"] and 7200 <= age < 7300, silent["stdout"]  # silent for 2 h
    assert bad["restart_pod"] == "would-change"
    assert [bad[s] for s in STAGE_B] == ["would-change"] * len(STAGE_B)
    assert all(v in ("ok", "skipped") for v in statuses(r, "chick11").values())
    assert snapshot(lab) == nodes_before
    assert kube_snapshot(lab) == cluster_before
    assert not unschedulable(lab, "chick12")


def test_fixes_one_node_at_a_time_and_leaves_healthy_ones_alone(lab: Lab, cli: Cli) -> None:
    F.inject(lab, "calico-silent@chick11,calico-silent@chick12")
    boots = {n: boot_id(lab, n) for n in NAMES}
    r = cli("run", "fix-calico", "--nodes", "chick10,chick11,chick12", "--json", "--yes",
            *FAST, timeout=600)
    assert r.rc == 0, r.stdout + r.stderr
    assert r.statuses() == {"chick10": "ok", "chick11": "changed", "chick12": "changed"}
    for node in ("chick11", "chick12"):
        s = statuses(r, node)
        assert s["stage_a_fixed"] == "ok" and s["restart_pod"] == "changed"
        assert [s[x] for x in STAGE_B] == ["changed"] * len(STAGE_B), s
        assert boot_id(lab, node) != boots[node]
        assert log_age(lab, node) < 5
        assert not unschedulable(lab, node)
    assert boot_id(lab, "chick10") == boots["chick10"]
    # The journal: one node at a time (chick11 uncordoned before chick12 is cordoned), the
    # reboots recorded, the healthy node never cordoned.
    report = cli("report", r.json["run_id"], "--json").json
    events = [(e["host"], e["step_id"], e["status"]) for e in report["steps"]]
    order = [(h, s) for h, s, st in events if st == "changed"]
    assert order.index(("chick11", "uncordon")) < order.index(("chick12", "cordon"))
    assert ("chick11", "reboot", "changed") in events
    assert ("chick12", "reboot", "changed") in events
    assert not any(h == "chick10" and s == "cordon" and st == "changed" for h, s, st in events)
    # Second run: nothing to do anywhere.
    again = cli("run", "fix-calico", "--nodes", "chick10,chick11,chick12", "--json", "--yes",
                *FAST, timeout=300)
    assert again.statuses() == dict.fromkeys(NAMES, "ok"), again.stdout


def test_failed_drain_leaves_the_node_cordoned_and_halts(lab: Lab, cli: Cli) -> None:
    F.inject(lab, "calico-silent@chick11,calico-silent@chick12,bare-pod@chick11")
    boot12 = boot_id(lab, "chick12")
    r = cli("run", "fix-calico", "--nodes", "chick11,chick12", "--json", "--yes", *FAST,
            timeout=300)
    assert r.rc != 0
    assert r.json["status"] == "halted"
    assert r.statuses() == {"chick11": "failed", "chick12": "not-run"}
    s = statuses(r, "chick11")
    assert s["cordon"] == "changed" and s["drain"] == "failed"
    assert s["reboot"] != "changed" and s["uncordon"] != "changed"
    assert unschedulable(lab, "chick11"), "a node whose drain failed stays cordoned"
    assert not unschedulable(lab, "chick12")
    assert boot_id(lab, "chick12") == boot12


def test_a_node_cordoned_before_the_run_stays_cordoned(lab: Lab, cli: Cli) -> None:
    F.inject(lab, "calico-silent@chick12")
    kubectl(lab, "cordon", "chick12")
    r = cli("run", "fix-calico", "--nodes", "chick12", "--json", "--yes", *FAST, timeout=300)
    assert r.rc == 0, r.stdout + r.stderr
    s = statuses(r, "chick12")
    assert s["reboot"] == "changed" and s["uncordon"] == "skipped"
    assert unschedulable(lab, "chick12")
    assert log_age(lab, "chick12") < 5


def test_diagnose_flags_the_silent_node(lab: Lab, cli: Cli) -> None:
    F.inject(lab, "calico-silent@chick11")
    r = cli("diagnose", "--json", "--runbook", "fix-calico", "--evidence")
    verdicts = {n: row["fix-calico"]["status"] for n, row in r.json["nodes"].items()}
    assert verdicts == {"chick10": "ok", "chick11": "broken", "chick12": "ok"}, r.stdout
    assert "newest log line" in str(r.json["nodes"]["chick11"]["fix-calico"]["evidence"])


def test_an_unreachable_node_is_neither_cordoned_nor_counted_fixed(lab: Lab, cli: Cli) -> None:
    """chick12's sshd is down: the run cannot check it, so it must not touch it through the
    API either (no cordon of a node nobody could fix), and says so in its exit code."""
    F.inject(lab, "calico-silent@chick12")
    lab.stop_sshd("chick12")
    try:
        r = cli("run", "fix-calico", "--nodes", "chick11,chick12", "--json", "--yes", *FAST,
                timeout=300)
    finally:
        lab.start_sshd("chick12")
    assert r.rc == 1, r.stdout + r.stderr
    assert r.statuses()["chick12"] == "unreachable"
    assert not unschedulable(lab, "chick12")


def findings(r: Result, host: str) -> dict[str, bool]:
    return {s["id"]: bool(s.get("finding")) for s in r.json["hosts"][host]["steps"]}


def test_stage_a_needs_a_live_felix_not_just_a_fresh_log(lab: Lab, cli: Cli) -> None:
    """Issue 18: the restarted, still wedged felix keeps logging (fresh log) while liveness
    answers 503. Stage A used to call that fixed, skip stage B and fail verify_liveness; it
    now uses verify's criteria (fresh AND live) and escalates to the fix that works."""
    F.inject(lab, "calico-not-live@chick12")
    diag = cli("diagnose", "--json", "--runbook", "fix-calico", "--nodes", "chick11,chick12")
    assert {n: row["fix-calico"]["status"] for n, row in diag.json["nodes"].items()} == {
        "chick11": "ok", "chick12": "broken"}, diag.stdout
    r = cli("run", "fix-calico", "--nodes", "chick12", "--json", "--yes", *FAST, timeout=600)
    assert r.rc == 0, r.stdout + r.stderr
    s, found = statuses(r, "chick12"), findings(r, "chick12")
    assert not found["stage_a_fixed"], "the restarted felix logs: fresh"
    assert found["stage_a_live"], "...but it is not live"
    assert [s[x] for x in STAGE_B] == ["changed"] * len(STAGE_B), s
    live = lab.node_exec("chick12", "curl -s -o /dev/null -w '%{http_code}' "
                                    "http://127.0.0.1:9099/liveness").stdout
    assert live == "200" and not unschedulable(lab, "chick12")


def test_contradictory_timings_are_refused(lab: Lab, cli: Cli) -> None:
    """fresh_within >= settle: one log line of the restarted pod would pass; refused as bad
    input (exit 2) before anything runs, in a dry run too."""
    F.inject(lab, "calico-silent@chick12")
    before = snapshot(lab), kube_snapshot(lab)
    for extra in ((), ("--dry-run",)):
        r = cli("run", "fix-calico", "--nodes", "chick12", "--yes", "--var", "settle=4s",
                "--var", "fresh_within=5s", *extra)
        assert r.rc == 2, r.stdout + r.stderr
        assert "fresh_within (5) must be below settle (4)" in r.stderr, r.stderr
    assert (snapshot(lab), kube_snapshot(lab)) == before


def api_url(lab: Lab) -> str:
    text = (lab.directory / "kubeconfig").read_text()
    return re.search(r"server: (\S+)", text).group(1)  # type: ignore[union-attr]


def test_a_disruption_budget_stalls_the_drain_and_halts_the_rollout(lab: Lab, cli: Cli) -> None:
    """Issue 18: a one-replica app under a PodDisruptionBudget (minAvailable 1) on chick11.
    The API answers each eviction 429 with the real API server's Status; the real kubectl
    drain retries every 5 s until its --timeout. fix-calico's drain fails, chick11 stays
    cordoned (never pruned or rebooted), and the rollout halts before chick12."""
    F.inject(lab, "calico-silent@chick11,pdb-blocks-drain@chick11,calico-silent@chick12")
    boot11, boot12 = boot_id(lab, "chick11"), boot_id(lab, "chick12")
    pod = kubectl(lab, "get", "pod", "-l", "app=guarded-chick11", "-o",
                  "jsonpath={.items[0].metadata.name}").stdout
    request = urllib.request.Request(
        f"{api_url(lab)}/api/v1/namespaces/default/pods/{pod}/eviction", method="POST",
        headers={"Content-Type": "application/json"}, data=json.dumps({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod, "namespace": "default"}}).encode())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 429
    assert json.loads(refused.value.read()) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "reason": "TooManyRequests", "code": 429, "details": {"causes": [{
            "reason": "DisruptionBudget",
            "message": "The disruption budget guarded-chick11 needs 1 healthy pods and has 1 "
                       "currently"}]}}
    budget = kubectl(lab, "get", "pdb", "guarded-chick11").stdout.splitlines()
    assert budget[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED",
                                 "DISRUPTIONS", "AGE"]
    assert budget[1].split()[:4] == ["guarded-chick11", "1", "N/A", "0"]

    r = cli("run", "fix-calico", "--nodes", "chick11,chick12", "--json", "--yes", *FAST,
            "--var", "drain_timeout=8s", timeout=300)
    assert r.rc == 1, r.stdout + r.stderr
    assert r.json["status"] == "halted"
    assert r.statuses() == {"chick11": "failed", "chick12": "not-run"}
    s = statuses(r, "chick11")
    assert s["cordon"] == "changed" and s["drain"] == "failed", s
    assert all(s[x] not in ("changed", "failed") for x in ("save_logs", "prune", "reboot",
                                                           "uncordon")), s
    drain = next(x for x in r.json["hosts"]["chick11"]["steps"] if x["id"] == "drain")
    said = (drain.get("stdout") or "") + (drain.get("stderr") or "")
    assert "Cannot evict pod as it would violate the pod's disruption budget." in said, said
    assert "global timeout reached: 8s" in said, said
    assert unschedulable(lab, "chick11"), "a node whose drain timed out stays cordoned"
    assert not unschedulable(lab, "chick12")
    assert (boot_id(lab, "chick11"), boot_id(lab, "chick12")) == (boot11, boot12)
    assert kubectl(lab, "get", "pod", pod, "-o", "jsonpath={.spec.nodeName}").stdout == "chick11"
