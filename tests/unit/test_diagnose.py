"""How diagnose turns one host's dry-run result into ok / broken / unknown / unreachable."""

from __future__ import annotations

from pathlib import Path

import pytest

from netops.diagnose import finding
from netops.engine.result import HostResult, Status, StepResult
from netops.runbook.load import load_runbook

BOOK = """\
name: rb
description: d
steps:
  - {id: probe, check: 'true'}
  - {id: must, check: 'true', fail: true}
  - {id: api, check: kubectl get node x, on: controller}
  - {id: fix, shell: 'true', unless: 'false'}
"""


def step(sid: str, status: Status, *, finding: bool = False, rc: int | None = 0) -> StepResult:
    return StepResult(sid, sid, status, rc=rc, note=f"{sid} note", finding=finding)


@pytest.mark.parametrize("steps, verdict", [
    ([step("probe", Status.OK), step("fix", Status.OK)], "ok"),
    ([step("probe", Status.OK, finding=True), step("fix", Status.WOULD_CHANGE)], "broken"),
    ([step("must", Status.FAILED, finding=True, rc=1)], "broken"),
    # the API is down: what the node checks found before still counts, nothing else does
    ([step("probe", Status.OK, finding=True), step("api", Status.FAILED, rc=1)], "broken"),
    ([step("probe", Status.OK), step("api", Status.FAILED, rc=1)], "unknown"),
    ([step("must", Status.FAILED, rc=None)], "unknown"),  # could not run (timed out, say)
    ([step("probe", Status.UNREACHABLE, rc=None)], "unreachable"),
    ([], "unknown"),  # not run: the run halted before this host
])
def test_verdicts(tmp_path: Path, steps: list[StepResult], verdict: str) -> None:
    (tmp_path / "rb.yaml").write_text(BOOK)
    rb = load_runbook(tmp_path / "rb.yaml")
    status = {"ok": Status.OK, "broken": Status.WOULD_CHANGE, "unreachable": Status.UNREACHABLE,
              "unknown": Status.FAILED}[verdict]
    if not steps:
        status = Status.NOT_RUN
    elif any(s.status is Status.FAILED for s in steps):
        status = Status.FAILED
    result = finding(rb, HostResult("n1", 1, status, tuple(steps)), "halted")
    assert result.status == verdict
    if verdict == "broken":
        assert "note" in result.evidence


def test_a_fleet_wider_than_the_screen_is_shown_one_line_per_runbook() -> None:
    import io

    from rich.console import Console

    from netops.cli.diagnose import _show
    from netops.diagnose import BROKEN, OK, UNREACHABLE, Diagnosis, Finding

    result = Diagnosis(["check-ip-forward", "fix-calico"])
    for i in range(1, 41):
        result.nodes[f"chick{i}"] = {
            "check-ip-forward": Finding(BROKEN if i in (5, 6) else OK),
            "fix-calico": Finding(UNREACHABLE if i == 40 else OK)}
    for terminal in (True, False):  # 40 nodes do not fit 120 columns; a log never gets a table
        out = io.StringIO()
        _show(Console(file=out, force_terminal=terminal, width=120, emoji=False), result, False)
        lines = out.getvalue().splitlines()
        assert lines[0].startswith("runbook x node, 40 node(s):")
        assert lines[1].split() == ["check-ip-forward", "·", "ok", "38;", "✗", "broken", "2:",
                                    "chick5,", "chick6"]
        assert lines[2].split() == ["fix-calico", "·", "ok", "39;", "!", "unreachable", "1:",
                                    "chick40"]
        assert "fix: netops run check-ip-forward --nodes chick5,chick6 --dry-run" in lines


def test_a_fleet_that_fits_a_terminal_keeps_the_matrix() -> None:
    import io

    from rich.console import Console

    from netops.cli.diagnose import _show
    from netops.diagnose import OK, Diagnosis, Finding

    result = Diagnosis(["check-ip-forward"], {"chick1": {"check-ip-forward": Finding(OK)}})
    out = io.StringIO()
    _show(Console(file=out, force_terminal=True, width=120, emoji=False), result, False)
    assert "runbook x node" in out.getvalue() and "node(s)" not in out.getvalue()


ONCE_BOOKS = {
    "on-etcd": """\
name: on-etcd
description: a once-step on the etcd group
before:
  - {id: leader, check: 'echo from-{{ host.name }}', where: once, group: etcd}
steps:
  - {id: probe, check: 'true'}
""",
    "on-workers": """\
name: on-workers
description: a once-step on the workers group
before:
  - {id: leader, check: 'echo from-{{ host.name }}', where: once, group: workers}
steps:
  - {id: probe, check: 'test {{ leader.stdout }} = from-n3', fail: true}
""",
}


def test_once_steps_stay_on_the_selected_nodes(tmp_path: Path) -> None:
    """Issue 15: `diagnose --nodes workers` crashed (KeyError) when a once-step picked an etcd
    host outside the selection. A once-step now runs on a selected host of its group; with
    none, the runbook is `unknown`, saying why."""
    from netops.diagnose import diagnose, plans
    from netops.engine.events import Recorder
    from netops.inventory.load import load_inventory
    from netops.transport.local import LocalTransport

    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  children:\n    etcd:\n      hosts: {n1: {}}\n    workers:\n"
                   "      hosts: {n2: {}, n3: {}}\n")
    for name, text in ONCE_BOOKS.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    inventory = load_inventory(inv)
    hosts = inventory.select("n3")  # n2 comes first in workers
    connections = {h.name: LocalTransport(h.name) for h in hosts}  # only the selected
    books = [load_runbook(tmp_path / f"{n}.yaml") for n in ONCE_BOOKS]
    result = diagnose(plans(books, inventory, hosts), hosts, lambda h: connections[h.name],
                      LocalTransport, Recorder())
    assert result.nodes["n3"]["on-workers"].status == "ok"  # leader ran on n3, not n2
    etcd = result.nodes["n3"]["on-etcd"]
    assert etcd.status == "unknown" and "no host of group 'etcd'" in etcd.evidence


def test_once_step_runbooks_run_over_the_reached_nodes_only(tmp_path: Path) -> None:
    """A runbook with once-steps runs beside the hosts' own runbooks, once every host has been
    reached, over the reached ones: an unreachable node is `unreachable` for it too, and the
    once-step runs on a reached host of its group (n3, not the unreachable n2)."""
    from netops.diagnose import diagnose, plans
    from netops.engine.events import Recorder
    from netops.inventory.load import load_inventory
    from netops.transport.local import LocalTransport

    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  children:\n    workers:\n      hosts: {n2: {}, n3: {}}\n")
    (tmp_path / "on-workers.yaml").write_text(ONCE_BOOKS["on-workers"])
    (tmp_path / "alone.yaml").write_text("name: alone\ndescription: d\nsteps:\n"
                                         "  - {id: a, check: 'true'}\n")
    inventory = load_inventory(inv)
    hosts = inventory.select(None)
    books = [load_runbook(tmp_path / f"{n}.yaml") for n in ("on-workers", "alone")]
    result = diagnose(plans(books, inventory, hosts), hosts, lambda h: LocalTransport(h.name),
                      LocalTransport, Recorder(), reach=lambda h: "down" if h.name == "n2" else "")
    assert {rb: f.status for rb, f in result.nodes["n2"].items()} == {
        "on-workers": "unreachable", "alone": "unreachable"}
    assert {rb: f.status for rb, f in result.nodes["n3"].items()} == {
        "on-workers": "ok", "alone": "ok"}
    assert list(result.nodes["n3"]) == ["on-workers", "alone"]  # the runbooks' order


def test_diagnose_vars_are_per_runbook() -> None:
    from netops.cli.diagnose import _runbook_vars
    from netops.errors import UserError

    names = ["check-conntrack", "check-ip-forward"]
    assert _runbook_vars(["check-conntrack.sample_interval=1s",
                          "check-conntrack.max_percent=80"], names) == {
        "check-conntrack": ["sample_interval=1s", "max_percent=80"]}
    for bad in ("sample_interval=1s", "nosuch.x=1", "check-conntrack.x"):
        with pytest.raises(UserError, match=r"RUNBOOK\.NAME=VALUE"):
            _runbook_vars([bad], names)
