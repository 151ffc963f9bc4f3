"""`netops diagnose`: every runbook's read-only checks on every node -> a node x runbook matrix.

Each runbook runs as a dry run (so nothing can mutate: the read-only transport refuses it) over
one kept-open connection per node. The checks that can be predicted are fetched in one batch
per node before any runbook starts (`netops.engine.readahead`); then a node's runbooks run side
by side, and the reads they could not predict go to the node in rounds, one batch per round
(`netops.engine.rounds`). A node is `broken`
for a runbook when the runbook would change it, or when one of its checks that must hold
(`fail: true`) does not; `unknown` when a check could not run; `unreachable` when the node
could not be reached.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from netops.engine.events import Observer
from netops.engine.result import HostResult, RunResult, Status, StepResult
from netops.transport.base import Transport

if TYPE_CHECKING:
    from netops.engine.plan import Plan
    from netops.engine.rounds import Rounds
    from netops.inventory.model import Host, Inventory
    from netops.runbook.model import Runbook
    from netops.transport.ssh import SshConnector

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


def plans(runbooks: Sequence[Runbook], inventory: Inventory, hosts: Sequence[Host], *,
          forks: int = 50, timeout: float = 60.0,
          pairs: Mapping[str, Sequence[str]] | None = None) -> list[Plan]:
    """One dry-run plan per runbook over `hosts` (all in one batch, nothing halts), its
    once-steps kept to the hosts of `hosts`."""
    from netops.engine.prepare import Overrides, build_plan

    over = Overrides(batch_size="100%", max_fail="100%", forks=forks, timeout=timeout)
    selected = {h.name for h in hosts}
    out = []
    for rb in runbooks:
        plan = build_plan(rb, inventory, hosts, (pairs or {}).get(rb.name, ()), over,
                          dry_run=True)
        # diagnose connects only to the selected nodes: a once-step runs on a selected host
        # of its group, or fails ("no host of group ... to run on") and the runbook's
        # finding is `unknown`
        out.append(_kept_to(plan, selected))
    return out


def _kept_to(plan: Plan, names: Collection[str]) -> Plan:
    """`plan` with its once-steps kept to the hosts named (those selected, or reached)."""
    return replace(plan, once_hosts={g: tuple(h for h in members if h.name in names)
                                     for g, members in plan.once_hosts.items()})


def diagnose(dry_runs: Sequence[Plan], hosts: Sequence[Host],
             connect: Callable[[Host], Transport], controller: Callable[[], Transport],
             observer: Observer, *, forks: int = 50,
             reach: Callable[[Host], str] | None = None,
             rounds: Callable[[Host], Rounds] | None = None) -> Diagnosis:
    """Run every plan on `hosts`. Each host goes through the runbooks on its own, with no
    barrier between hosts (a slow node holds up only itself): first `reach(host)` (connect,
    fetch what can be fetched; why not, "" when reached), then every runbook: side by side,
    gathering their reads into rounds, when `rounds(host)` is the `Rounds` under the host's
    transport; else one after the other. A runbook with once-steps (before:/after:) runs over
    all the reached hosts at once, so that its once-steps run once: as soon as every host has
    been reached, beside the hosts' own runbooks (not after the slowest of them)."""
    from netops.engine.execute import World, execute
    from netops.engine.parallel import each

    diagnosis = Diagnosis([p.runbook.name for p in dry_runs])
    for h in hosts:
        diagnosis.nodes[h.name] = {}
    world = World(connect=connect, controller=controller, observer=observer)
    alone = [p for p in dry_runs if not (p.runbook.before or p.runbook.after)]

    def over_reached(plan: Plan, up: tuple[Host, ...]) -> RunResult:
        # the once-steps too: a once-step's host must be one that was reached
        return execute(replace(_kept_to(plan, {h.name for h in up}), batches=(up,)), world)

    together = _Together([p for p in dry_runs if p.runbook.before or p.runbook.after],
                         hosts, over_reached)

    def one_host(host: Host) -> dict[str, Finding]:
        why = "not reached"  # should `reach` raise, the runbooks with once-steps skip it
        try:
            why = reach(host) if reach is not None else ""
        finally:
            together.reached(host, not why)
        if why:
            return {p.runbook.name: Finding(UNREACHABLE, why) for p in dry_runs}
        gather = rounds(host) if rounds is not None and len(alone) > 1 else None

        def one_runbook(plan: Plan) -> Finding:
            try:
                run = execute(replace(plan, batches=((host,),)), world)
                return finding(plan.runbook, run.hosts[host.name], run.reason)
            finally:
                if gather is not None:
                    gather.leave()

        if gather is not None:
            gather.expect(len(alone))
        found = each(alone, one_runbook, len(alone) if gather is not None else 1)
        return {p.runbook.name: f for p, f in zip(alone, found, strict=True)}

    together.start()
    for host, row in zip(hosts, each(list(hosts), one_host, forks), strict=True):
        diagnosis.nodes[host.name].update(row)
    for name, row in together.join().items():
        diagnosis.nodes[name].update(row)
    order = [p.runbook.name for p in dry_runs]
    for name, row in diagnosis.nodes.items():
        diagnosis.nodes[name] = {rb: row[rb] for rb in order if rb in row}
    return diagnosis


def diagnose_fleet(dry_runs: Sequence[Plan], hosts: Sequence[Host], connector: SshConnector,
                   observer: Observer, *, forks: int = 50) -> Diagnosis:
    """`diagnose` (of the `plans` of its runbooks, built first: they check the input) over SSH,
    with its transport stack: per node one kept connection, under it
    the rounds (`Rounds`: the runbooks' unpredicted reads, one batch per round), above it the
    read-ahead (`ReadAhead`: every predicted read of every runbook, fetched on reaching the
    node; where a slow read such as check-conntrack's sample starts with them, the quick ones
    wait for the fleet's handshakes to settle first). The connections are closed at the end."""
    from netops.engine.readahead import Read, ReadAhead, predict
    from netops.engine.rounds import Rounds
    from netops.errors import TransportError
    from netops.transport.local import LocalTransport

    settled = connector.warm(hosts, forks)  # diagnose never asks and never changes anything
    reads: dict[str, list[Read | None]] = {h.name: [] for h in hosts}
    for plan in dry_runs:
        for name, mine in predict(plan).items():
            reads[name] += mine
    ssh = {h.name: connector.transport(h) for h in hosts}
    rounds = {name: Rounds(t) for name, t in ssh.items()}
    kept = {name: ReadAhead(r, reads[name], hold=settled.wait) for name, r in rounds.items()}

    def reach(host: Host) -> str:
        """Connect and fetch the node's predicted checks in one go; why not, if not."""
        try:
            kept[host.name].reach()
            return ""
        except TransportError as e:
            return str(e)

    try:
        return diagnose(dry_runs, hosts, lambda h: kept[h.name], LocalTransport, observer,
                        forks=forks, reach=reach, rounds=lambda h: rounds[h.name])
    finally:
        for t in ssh.values():
            t.close()


class _Together:
    """The runbooks with once-steps, run over every reached host in a thread of their own once
    each host's `reached` is known (their reads join the hosts' rounds as they come)."""

    def __init__(self, plans: Sequence[Plan], hosts: Sequence[Host],
                 run: Callable[[Plan, tuple[Host, ...]], RunResult]) -> None:
        import threading

        self._plans, self._hosts, self._run = plans, hosts, run
        self._up: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._all = threading.Event()
        self._found: dict[str, dict[str, Finding]] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._go, daemon=True)
        if not hosts:
            self._all.set()

    def reached(self, host: Host, up: bool) -> None:
        with self._lock:
            self._up[host.name] = up
            if len(self._up) == len(self._hosts):
                self._all.set()

    def start(self) -> None:
        if self._plans:
            self._thread.start()

    def _go(self) -> None:
        try:
            self._all.wait()
            up = tuple(h for h in self._hosts if self._up.get(h.name))
            for plan in self._plans if up else ():
                run = self._run(plan, up)
                for name, result in run.hosts.items():
                    self._found.setdefault(name, {})[plan.runbook.name] = finding(
                        plan.runbook, result, run.reason)
        except BaseException as e:  # raised again in the caller's thread by `join`
            self._error = e

    def join(self) -> dict[str, dict[str, Finding]]:
        """Host -> runbook -> finding, once they are done."""
        if self._plans:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._found
