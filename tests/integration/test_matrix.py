"""The fault x runbook matrix (issue 18): every lab fault against every runbook, one table.

One lab: chick1 stays healthy, chick2..chick7 each get one fault per round (faults that share
cluster state, like flannel's etcd prefix, sit in different rounds). Per round:

1. `diagnose` over the whole library flags exactly each fault's owning runbook(s) on exactly
   its node; every other cell is ok (healthy nodes, other runbooks);
2. each owning runbook's dry run flags exactly its faulty nodes (would-change, or failed for a
   report-only finding), its real run fixes them (changed) and leaves the rest ok;
3. the faulty nodes reboot; `diagnose` then finds every cell ok (a re-run would change nothing
   and the fixes survived the boot), but for report-only faults that a reboot cannot clear.

A new fault is covered by adding it to a round (and, unless its own runbook simply fixes it, a
row to MATRIX); a new runbook by being in the library (every diagnose runs all of them, so it
must find every fault's node ok or own it).
The per-runbook tests (test_library*.py, test_fix_calico.py) check the details of each fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netops.lab import Lab
from netops.lab import faults as F
from netops.lab import faults_k8s as K
from netops.lab.verify import each, reset
from tests.integration.helpers import Cli, Result, lab_for

pytestmark = pytest.mark.lab
NAMES = ["chick1", "chick2", "chick3", "chick4", "chick5", "chick6", "chick7"]
GOOD, SLOTS = NAMES[0], NAMES[1:]


@dataclass(frozen=True)
class Row:
    """What a fault does to the library: the runbooks that flag it, and how they end."""

    owners: tuple[str, ...]
    """Runbooks whose diagnose flags the faulty node and whose run fixes it (empty: the
    fault only aggravates another)."""
    also: tuple[str, ...] = ()
    """Runbooks that also flag it (a consequence), fine once the owners' runs are done."""
    fixed: bool = True
    """The owners' run fixes it; False: report-only (the run fails with the finding)."""
    after_boot: bool = True
    """Fixed (or, report-only, gone) after a reboot: False when a report-only fault stays."""
    vars: tuple[str, ...] = ()
    """--var NAME=VALUE for the owners' runs."""


FLANNEL = ("network=10.245.0.0/16", "drain=false")
MATRIX: dict[str, Row] = {name: Row((f.runbook,)) for name, f in F.FAULTS.items()} | {
    # the rest: the fault's own runbook (F.FAULTS) flags it and its run fixes it
    "stale-ipam": Row(("flush-stale-ipam",), vars=("cordon=false",)),
    "flannel-overlap": Row(("reset-flannel-subnet",), vars=FLANNEL),
    "flannel-overlap-v2": Row(("reset-flannel-subnet",), vars=FLANNEL),
    "flannel-config-v2-only": Row(("reset-flannel-subnet",),
                                  vars=("flannel_etcd_api=v3", "drain=false")),
    "flannel-config-v3-only": Row(("reset-flannel-subnet",), vars=FLANNEL),
    "flannel-etcd-v2-off": Row(("reset-flannel-subnet",), fixed=False, after_boot=False),
    "cni-config-missing": Row(("check-cni-config",), fixed=False, after_boot=False),
    "conntrack-near-full": Row(("check-conntrack",), fixed=False,
                               vars=("sample_interval=1s",)),
    "calico-silent": Row(("fix-calico",), vars=("settle=4s", "fresh_within=3s")),
    "calico-not-live": Row(("fix-calico",), vars=("settle=4s", "fresh_within=3s")),
    "bare-pod": Row(()),
    # a PodDisruptionBudget only stalls a drain (test_fix_calico: the rollout halts)
    "pdb-blocks-drain": Row(()),
    # SELinux blocks install-cni: no CNI config either (check-cni-config reports it)
    "selinux-enforcing": Row(("selinux-cni-install",), also=("check-cni-config",),
                             vars=("accept_permissive=true",)),
}

ROUNDS: list[list[str]] = [
    ["ip-forward-off", "bridge-nf-off", "forward-drop", "stale-ipam", "flannel-overlap",
     "resolv-conf-stub-symlink"],
    ["ip-forward-boot-override", "docker-dropin-no-service", "hairpin-off",
     "networkd-catchall", "flannel-overlap-v2", "resolv-conf-no-resolved"],
    ["ip-forward-sysctl-conf", "cni-config-stale", "conntrack-near-full", "selinux-enforcing",
     "flannel-config-v2-only", "kube-proxy-legacy-rules-missing"],
    ["cni-config-missing", "calico-silent", "nodelocaldns-down", "kube-proxy-rules-missing",
     "flannel-config-v3-only", "forward-drop-legacy"],
    ["calico-not-live", "bare-pod", "resolv-conf-loopback", "resolv-conf-too-many-nameservers",
     "flannel-etcd-v2-off", "pdb-blocks-drain"],
]


def test_every_fault_is_in_the_matrix_and_a_round() -> None:
    assert set(MATRIX) == set(F.FAULTS), "a matrix row for a fault the lab does not have"
    placed = [f for r in ROUNDS for f in r]
    assert sorted(placed) == sorted(MATRIX), "every fault in exactly one round"
    assert all(len(r) <= len(SLOTS) for r in ROUNDS)
    for name, row in MATRIX.items():
        assert not row.owners or F.FAULTS[name].runbook in row.owners, name
        assert not set(row.also) & set(row.owners), name


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from lab_for(tmp_path_factory.mktemp("matrix"), NAMES, 222)


def cells(r: Result) -> dict[tuple[str, str], str]:
    return {(n, rb): c["status"] for n, row in r.json["nodes"].items() for rb, c in row.items()}


def diagnose(cli: Cli) -> Result:
    # the conntrack fault is about the table filling up, not the insert_failed sample
    return cli("diagnose", "--json", "--var", "check-conntrack.sample_interval=1s",
               timeout=600)


def expected(placed: dict[str, str], *, after_boot: bool = False) -> dict[tuple[str, str], str]:
    """node -> runbook -> "broken" for the cells the faults own (the rest: ok)."""
    out = {}
    for node, fault in placed.items():
        row = MATRIX[fault]
        if after_boot and (row.after_boot or row.fixed):
            continue
        for rb in row.owners + (() if after_boot else row.also):
            out[(node, rb)] = "broken"
    return out


def differences(r: Result, want: dict[tuple[str, str], str]) -> list[str]:
    nodes = r.json["nodes"]
    return [f"{n} x {rb}: {st} (want {want.get((n, rb), 'ok')}): {nodes[n][rb]['evidence']}"
            for (n, rb), st in sorted(cells(r).items()) if st != want.get((n, rb), "ok")]


@pytest.mark.parametrize("round_no", range(len(ROUNDS)), ids=lambda i: f"round{i + 1}")
def test_matrix(lab: Lab, tmp_path: Path, round_no: int) -> None:
    faults = ROUNDS[round_no]
    placed = dict(zip(SLOTS, faults, strict=False))
    reset(lab)
    for node, fault in placed.items():
        F.inject(lab, f"{fault}@{node}")
    if "resolv-conf-loopback" in faults:
        K.wait_started(lab, next(n for n, f in placed.items() if f == "resolv-conf-loopback"),
                       timeout=60)
    cli = Cli(lab, tmp_path)

    # 1. diagnose: exactly the owners, on exactly the faulty nodes
    found = diagnose(cli)
    misses = differences(found, expected(placed))
    assert not misses, "diagnose before the fix:\n" + "\n".join(misses)
    assert len(cells(found)) >= len(NAMES) * 14

    # 2. each owner: its dry run flags exactly its nodes, its run fixes them
    owners: dict[str, list[str]] = {}
    for node, fault in placed.items():
        for rb in MATRIX[fault].owners:
            owners.setdefault(rb, []).append(node)
    consequences = {rb for f in faults for rb in MATRIX[f].also}
    for rb, nodes in sorted(owners.items(), key=lambda kv: kv[0] in consequences):
        rows = [MATRIX[placed[n]] for n in nodes]
        args = [x for v in dict.fromkeys(v for row in rows for v in row.vars)
                for x in ("--var", v)]
        args += ["--pause", "0", "--max-fail", "100%"]  # a report-only node must not halt
        for flag, fixing in (("--dry-run", "would-change"), ("--yes", "changed")):
            r = cli("run", rb, "--nodes", "all", "--json", flag, *args, timeout=900)
            want = dict.fromkeys(NAMES, "ok") | {
                n: (fixing if MATRIX[placed[n]].fixed else "failed") for n in nodes}
            assert r.statuses() == want, f"{rb} {flag}:\n{r.stdout}\n{r.stderr}"

    # 3. reboot the faulty nodes: every cell ok (but report-only faults a boot keeps)
    for node in placed:
        lab.reboot(node)
    each(list(placed), lambda n: K.wait_started(lab, n, timeout=60))
    after = diagnose(cli)
    misses = differences(after, expected(placed, after_boot=True))
    assert not misses, "diagnose after the fix and a reboot:\n" + "\n".join(misses)
