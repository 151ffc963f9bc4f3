"""`netops diagnose`: every runbook's read-only checks on every node -> a node x runbook matrix.

Each runbook runs as a dry run (so nothing can mutate: the read-only transport refuses it) over
one kept-open connection per node. A node is `broken` for a runbook when the runbook would
change it, or when one of its checks that must hold (`fail: true`) does not; `unknown` when a
check could not run; `unreachable` when the node could not be reached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netops.engine.events import Observer
from netops.engine.result import HostResult, Status, StepResult
from netops.transport.base import Transport

if TYPE_CHECKING:
    from netops.inventory.model import Host, Inventory
    from netops.runbook.model import Runbook

OK, BROKEN, UNKNOWN, UNREACHABLE = "ok", "broken", "unknown", "unreachable"


@dataclass(frozen=True, slots=True)
class Finding:
    status: str
    evidence: str = ""


@dataclass
class Diagnosis:
    checks: list[str]
    nodes: dict[str, dict[str, Finding]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"checks": self.checks,
                "nodes": {n: {rb: {"status": f.status, "evidence": f.evidence}
                              for rb, f in row.items()} for n, row in self.nodes.items()}}

    def broken(self) -> dict[str, list[str]]:
        """Runbook -> the nodes it would fix."""
        out: dict[str, list[str]] = {}
        for node, row in self.nodes.items():
            for rb, f in row.items():
                if f.status == BROKEN:
                    out.setdefault(rb, []).append(node)
        return out


def applicable(runbook: Runbook) -> bool:
    """Runbooks diagnose can run unattended: no param without a default."""
    return all(not p.required for p in runbook.params.values())


def finding(runbook: Runbook, host: HostResult, reason: str = "") -> Finding:
    where = {s.id: s.on for s in runbook.all_steps()}
    evidence = [_evidence(s) for s in host.steps
                if s.finding or s.status in (Status.WOULD_CHANGE, Status.FAILED,
                                             Status.UNREACHABLE)]
    text = "\n".join(e for e in evidence if e)
    if host.status is Status.UNREACHABLE:
        return Finding(UNREACHABLE, text)
    if host.status is Status.FAILED:
        # A node check that must hold and did not is a finding; a failed controller step (no
        # API server, say) only hides what the node checks before it already found.
        failed = next(s for s in host.steps if s.status is Status.FAILED)
        found_on_node = any(s.finding for s in host.steps if where.get(s.id) == "node")
        broken = (failed.finding and where.get(failed.id) == "node") or \
            (where.get(failed.id) != "node" and found_on_node)
        return Finding(BROKEN if broken else UNKNOWN, text)
    if host.status is Status.WOULD_CHANGE:
        return Finding(BROKEN, text)
    if host.status is Status.NOT_RUN:
        return Finding(UNKNOWN, reason or "not run")
    return Finding(OK, "")


def _evidence(s: StepResult) -> str:
    detail = s.note or (s.stderr.strip().splitlines() or [""])[0]
    return f"{s.id}: {detail}".strip()


def diagnose(runbooks: Sequence[Runbook], inventory: Inventory, hosts: Sequence[Host],
             connect: Callable[[Host], Transport], controller: Callable[[], Transport],
             observer: Observer, *, forks: int = 50,
             timeout: float = 60.0) -> Diagnosis:
    from netops.engine.execute import World, execute
    from netops.engine.prepare import Overrides, build_plan

    diagnosis = Diagnosis([rb.name for rb in runbooks])
    for h in hosts:
        diagnosis.nodes[h.name] = {}
    world = World(connect=connect, controller=controller, observer=observer)
    over = Overrides(batch_size="100%", max_fail="100%", forks=forks, timeout=timeout)
    for rb in runbooks:
        plan = build_plan(rb, inventory, hosts, [], over, dry_run=True)
        run = execute(plan, world)
        for name, result in run.hosts.items():
            diagnosis.nodes[name][rb.name] = finding(rb, result, run.reason)
    return diagnosis
