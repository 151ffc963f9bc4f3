"""A run session: between the CLI (or the scheduler, or a test) and the engine.

It owns what makes a run trustworthy rather than what it does on a node: the journal record
(checked writable before any host is touched), the node locks (all taken before the first step;
a host whose lock cannot be taken is failed, never run unlocked; a resumed chain's locks are
taken over), the transport stack (read-ahead over kept connections), and the journal failing
mid-run (the run stops between steps, exit 1). The CLI parses options, calls `RunSession.run`,
and renders the `RunResult`.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netops.errors import JournalError, TransportError

if TYPE_CHECKING:
    from netops.engine.events import Observer
    from netops.engine.plan import Plan
    from netops.engine.result import RunResult
    from netops.inventory.model import Host
    from netops.journal import Journal, RunRecord
    from netops.locks import Holder
    from netops.transport.base import Transport
    from netops.transport.ssh import SshConnector


def inventory_digest(sources: Sequence[Path]) -> str:
    """sha256 of the inventory: of the file itself when it is one file (what `sha256sum`
    prints), else over every -i source, a directory's files included (in path order)."""
    if len(sources) == 1 and sources[0].is_file():
        return hashlib.sha256(sources[0].read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for source in sources:
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() \
            else [source] if source.is_file() else []
        for f in files:
            digest.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def _invocation(inventory: Sequence[Path], nodes: str | None,
                argv: Sequence[str]) -> dict[str, Any]:
    """What a run's and an exec's records share: the inventory, the targets, the command
    line (its --notify URLs redacted)."""
    from netops.notify import redact_argv

    return {"inventory": ",".join(str(p.resolve()) for p in inventory),
            "inventory_sha256": inventory_digest(inventory), "nodes": nodes or "all",
            "argv": redact_argv(argv)}


def run_record(plan: Plan, inventory: Sequence[Path], nodes: str | None,
               batch_size: str | None) -> RunRecord:
    """The journal's record of `plan` before it starts (secret params masked)."""
    from netops.engine.prepare import rollout_record
    from netops.journal import RunRecord
    from netops.transport.base import mask

    rb = plan.runbook
    params = {k: ("***" if rb.params[k].secret else v) for k, v in plan.params.items()}
    return RunRecord(
        run_id=plan.run_id, runbook=rb.name, runbook_path=str(rb.source.resolve()),
        runbook_sha256=hashlib.sha256(rb.source.read_bytes()).hexdigest(),
        params=params, dry_run=plan.dry_run, batches=[[h.name for h in b] for b in plan.batches],
        resumed_from=plan.resumed_from, rollout=rollout_record(plan, batch_size),
        **_invocation(inventory, nodes, [mask(a, plan.secrets) for a in sys.argv]))


def exec_record(run_id: str, inventory: Sequence[Path], nodes: str | None, command: str, *,
                become: bool, hosts: Sequence[Host], forks: int, timeout: float) -> RunRecord:
    """The journal's record of `netops exec` before it starts: one batch of every host."""
    from netops.journal import RunRecord

    return RunRecord(
        run_id=run_id, runbook="exec", params={"command": command, "become": become},
        batches=[[h.name for h in hosts]], rollout={"forks": forks, "timeout": timeout},
        **_invocation(inventory, nodes, sys.argv))


@dataclass
class RunSession:
    """One run of a plan: record, locks, execution, release."""

    plan: Plan
    connector: SshConnector
    journal: Journal
    record: RunRecord
    takeover: frozenset[str] = frozenset()
    """Run ids whose node locks this run takes over (the resumed chain's)."""
    finished: tuple[Host, ...] = ()
    """Hosts the resumed chain finished: a dead run may have left its lock there."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set to stop starting steps (Ctrl-C, or the journal failing)."""
    journal_failed: JournalError | None = None

    @property
    def needs_locks(self) -> bool:
        """A dry run writes nothing on a node, not even a lock; a read-only runbook needs
        none."""
        return not self.plan.dry_run and any(s.mutates for s in self.plan.runbook.all_steps())

    def run(self, observers: Sequence[Observer],
            ask: Callable[[str], bool] | None = None) -> RunResult:
        """Execute the plan; raises NodeLocked (before any step) when another run holds a
        node, JournalError when the journal cannot take the run's record (`netops run`
        checked it could before connecting: `Journal.check`)."""
        from netops.engine.readahead import predict, wrap_all

        if not self.needs_locks:
            self.journal.start_run(self.record)
            connect = wrap_all(self.connector.transport, predict(self.plan))
            return self._execute(connect, observers, ask, {})
        return self._locked(observers, ask)

    def _locked(self, observers: Sequence[Observer],
                ask: Callable[[str], bool] | None) -> RunResult:
        from netops import locks
        from netops.engine.readahead import predict, wrap_all
        from netops.transport.kept import Kept

        hosts = {h.name: h for b in self.plan.batches for h in b}
        kept = {name: Kept(self.connector.transport(h)) for name, h in hosts.items()}
        holder = self._holder()
        stale = locks.stale_check(self._run_status, takeover=self.takeover)
        # recorded first: a journal that cannot take the record fails the run before any
        # node is touched, even by a lock
        self.journal.start_run(self.record)
        locked, held, failed = locks.lock_all(list(hosts), kept.__getitem__, holder, stale,
                                              self.plan.forks)
        try:
            if held:
                refused = locks.NodeLocked(held)
                self.journal.finish_run(self.plan.run_id, "failed", f"not run: {refused}")
                raise refused
            keeper = locks.LeaseKeeper(locked, kept.__getitem__, holder)

            # a once-step may run on a host the run does not target (an etcd host of a run
            # on workers): it gets a kept connection too, unlocked like the controller
            def kept_or_new(h: Host) -> Transport:
                if h.name not in kept:
                    kept[h.name] = Kept(self.connector.transport(h))
                return kept[h.name]
            connect = wrap_all(kept_or_new, predict(self.plan))
            return self._execute(connect, [*observers, keeper], ask, failed)
        finally:
            locks.release_all(locked, kept.__getitem__, self.plan.run_id, self.plan.forks)
            for t in kept.values():
                t.inner.close()
            self._release_chain()

    def _release_chain(self) -> None:
        """Remove the locks a dead run of the resumed chain left on hosts it finished."""
        from netops import locks
        from netops.engine.parallel import each

        def one(host: Host) -> None:
            t = self.connector.transport(host)
            try:
                for run_id in sorted(self.takeover):
                    with contextlib.suppress(TransportError):
                        locks.release(t, run_id)
            finally:
                t.close()

        if self.finished and self.takeover:
            each(list(self.finished), one, self.plan.forks)

    def _holder(self) -> Holder:
        from netops import locks

        r = self.record
        return locks.new_holder(self.plan.run_id, r.operator, r.controller, r.pid)

    def _run_status(self, run_id: str) -> str | None:
        run = self.journal.run(run_id)
        return run.status if run else None

    def _execute(self, connect: Callable[[Host], Transport], observers: Sequence[Observer],
                 ask: Callable[[str], bool] | None,
                 blocked: dict[str, TransportError]) -> RunResult:
        from netops.engine.events import FanOut
        from netops.engine.execute import World, execute

        journal = self.journal.observer(self.plan.run_id, self.plan.secrets, self._failed)
        world = World(connect=connect, controller=_controller,
                      observer=FanOut([journal, *observers]), ask=ask, stop=self.stop,
                      blocked=blocked)
        run = execute(self.plan, world)
        if self.journal_failed is not None:
            # the journal may take writes again (a lock released, space freed): then the run
            # ends recorded as failed, not as a crash; its unrecorded steps stay `running`,
            # which a resume treats as unknown
            with contextlib.suppress(JournalError):
                self.journal.finish_run(self.plan.run_id, "failed",
                                        f"stopped between steps: {self.journal_failed}")
        return run

    def _failed(self, error: JournalError) -> None:
        self.journal_failed = error
        self.stop.set()

    def abandon(self) -> None:
        """A second Ctrl-C: record the run as interrupted, its steps in flight as unknown
        (best effort: the process is about to exit)."""
        try:
            self.journal.finish_run(self.plan.run_id, "interrupted",
                                    "abandoned: a second interrupt left steps in flight")
            self.journal.settle_unknown(self.plan.run_id)
        except JournalError:
            pass


def _controller() -> Transport:
    """The controller's own transport, loaded only by a run with controller steps."""
    from netops.transport.local import LocalTransport

    return LocalTransport()

