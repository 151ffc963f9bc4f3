"""Node locks: one run at a time per node, held on the node itself.

The lock is a directory under /var/lib/netops (it survives a `reboot` step, unlike /run) with
an `owner` file naming the run, operator, controller and lease. Every check-and-change happens
under `flock` on the node, so two controllers cannot both win, and a stale lock is replaced
only if its owner is still the one the taker judged stale.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from netops.engine.parallel import each
from netops.errors import NetopsError, TransportError
from netops.transport.base import Command, Transport

LOCK_DIR = "/var/lib/netops/lock"
GUARD = "/var/lib/netops/.guard"
LEASE_S = 3600.0


class NodeLocked(NetopsError):
    """Another run holds a node this run needs (exit 3)."""

    def __init__(self, held: dict[str, Holder]) -> None:
        lines = [f"{host}: locked by run {h.run_id} of {h.user}@{h.controller} since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(h.started))}"
                 for host, h in sorted(held.items())]
        super().__init__("node(s) locked by another run:\n  " + "\n  ".join(lines))
        self.held = held


@dataclass(frozen=True, slots=True)
class Holder:
    run_id: str
    user: str
    controller: str
    pid: int
    started: float
    lease_until: float

    def to_text(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None


def _guarded(body: str) -> str:
    """`body` run under an exclusive flock on the node."""
    return (f"mkdir -p {shlex.quote(LOCK_DIR.rsplit('/', 1)[0])} && "
            f"( flock -w 20 9 || exit 75; {body} ) 9>{GUARD}")


def _acquire_script(owner: str, expected: str | None) -> str:
    d, o = shlex.quote(LOCK_DIR), shlex.quote(owner)
    if expected is None:
        body = (f"if mkdir {d} 2>/dev/null; then printf %s {o} > {d}/owner; echo ACQUIRED; "
                f"else echo HELD; cat {d}/owner 2>/dev/null; fi")
    else:  # take over only if the owner is still the one judged stale
        body = (f"if [ \"$(cat {d}/owner 2>/dev/null)\" = {shlex.quote(expected)} ]; then "
                f"printf %s {o} > {d}/owner; echo ACQUIRED; else echo HELD; "
                f"cat {d}/owner 2>/dev/null; fi")
    return _guarded(body)


def _release_script(run_id: str) -> str:
    d = shlex.quote(LOCK_DIR)
    return _guarded(f"grep -q {shlex.quote(json.dumps(run_id))} {d}/owner 2>/dev/null "
                    f"&& rm -rf {d}; true")


def acquire(t: Transport, holder: Holder,
            is_stale: Callable[[Holder], bool]) -> Holder | None:
    """Take the node's lock: None when taken, else the current holder."""
    expected: str | None = None
    for _ in range(2):
        done = t.run(Command(_acquire_script(holder.to_text(), expected), become=True),
                     timeout=30)
        if done.rc != 0:
            raise TransportError(getattr(t, "host", "?"),
                                 f"taking the netops lock failed: {done.stderr.strip()}")
        word, _, rest = done.stdout.partition("\n")
        if word.strip() == "ACQUIRED":
            return None
        current = Holder.parse(rest.strip())
        if current is not None and current.run_id == holder.run_id:
            return None  # ours already (a resumed or repeated attempt)
        if current is None or is_stale(current):
            expected = rest.strip()  # unreadable owners are from a crash mid-write
            continue
        return current
    return Holder.parse(rest.strip()) or holder


def _renew_script(holder: Holder) -> str:
    d = shlex.quote(LOCK_DIR)
    return _guarded(f"grep -q {shlex.quote(json.dumps(holder.run_id))} {d}/owner 2>/dev/null "
                    f"&& printf %s {shlex.quote(holder.to_text())} > {d}/owner")


class LeaseKeeper:
    """Observer: between batches, extends the lease of every lock this run holds once half of
    it has passed, so a long rolling run is never mistaken for a dead one."""

    def __init__(self, hosts: Sequence[str], connect: Callable[[str], Transport],
                 holder: Holder, lease_s: float = LEASE_S,
                 now: Callable[[], float] = time.time) -> None:
        self.hosts, self.connect, self.holder = list(hosts), connect, holder
        self.lease_s, self.now = lease_s, now

    def on_event(self, event: object) -> None:
        from netops.engine.events import BatchStarted

        if not isinstance(event, BatchStarted):
            return
        if self.now() < self.holder.lease_until - self.lease_s / 2:
            return
        h = self.holder
        self.holder = Holder(h.run_id, h.user, h.controller, h.pid, h.started,
                             self.now() + self.lease_s)
        script = _renew_script(self.holder)

        def renew(name: str) -> None:
            with contextlib.suppress(TransportError):  # unreachable: its lease just runs out
                self.connect(name).run(Command(script, become=True), timeout=30)

        each(self.hosts, renew, len(self.hosts))


def release(t: Transport, run_id: str) -> None:
    t.run(Command(_release_script(run_id), become=True), timeout=30)


def stale_check(journal_status: Callable[[str], str | None],
                now: Callable[[], float] = time.time,
                takeover: frozenset[str] = frozenset()) -> Callable[[Holder], bool]:
    """A holder is stale when its lease expired, the journal shows its run ended, or it is a
    run this one takes over (the chain a resume finishes)."""
    def is_stale(h: Holder) -> bool:
        if h.lease_until < now() or h.run_id in takeover:
            return True
        status = journal_status(h.run_id)
        return status is not None and status not in ("running",)
    return is_stale


def lock_all(hosts: Sequence[str], connect: Callable[[str], Transport], holder: Holder,
             is_stale: Callable[[Holder], bool],
             forks: int) -> tuple[list[str], dict[str, Holder], dict[str, TransportError]]:
    """Lock every host in parallel: (locked, held by others, failed with the error: the
    host was unreachable or the lock command failed, e.g. no sudo for /var/lib/netops)."""
    def one(name: str) -> tuple[str, Holder | None, TransportError | None]:
        try:
            return name, acquire(connect(name), holder, is_stale), None
        except TransportError as e:
            return name, None, e

    locked: list[str] = []
    held: dict[str, Holder] = {}
    unreachable: dict[str, TransportError] = {}
    for name, other, error in each(hosts, one, forks):
        if error is not None:
            unreachable[name] = error
        elif other is not None:
            held[name] = other
        else:
            locked.append(name)
    return locked, held, unreachable


def release_all(hosts: Sequence[str], connect: Callable[[str], Transport], run_id: str,
                forks: int) -> None:
    def one(name: str) -> None:
        # unreachable now: the lease and the journal will show the lock is stale
        with contextlib.suppress(TransportError):
            release(connect(name), run_id)

    each(hosts, one, forks)


def new_holder(run_id: str, user: str, controller: str, pid: int,
               lease_s: float = LEASE_S) -> Holder:
    now = time.time()
    return Holder(run_id, user, controller, pid, now, now + lease_s)
