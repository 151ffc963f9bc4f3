"""Rounds: the reads of several runbooks' dry runs on one node, gathered into one round trip.

`netops diagnose` runs every runbook's checks on a node. The read-ahead fetches the reads it can
predict in one batch before any runbook starts; what it cannot predict (a `when:` step's check,
the second command of a step) has to wait for the results before it. Run one runbook after the
other, each such read is a round trip of its own (about ten per node for the library). Run
side by side, each runbook goes as far as the answers in hand take it, then waits; once every
runbook still running waits on the node, the reads they wait on go to the node together, as
one batch (`run_batch`): one round trip per round, about as many rounds as the longest chain of
dependent reads in a single runbook.

Only read-only commands without stdin are gathered (all a dry run sends); anything else goes
straight through. So does a read that takes its time on purpose (a script that calls `sleep`:
check-conntrack samples a counter over 10 s): in a round it would hold up every read of that
round, so it gets a channel of its own at once, and while it runs its party does not count as
live, so that the other runbooks' rounds go on (the node's other checks are done by the time
the sample is). With no party expected, a `Rounds` is a plain pass-through. Like `Kept`, which
it extends, it leaves the connection open for the caller to close.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from netops.engine.readahead import shortest, takes_its_time
from netops.errors import TransportError
from netops.transport.base import Command, Completed, Transport, read_file
from netops.transport.kept import Kept

T = TypeVar("T")


@dataclass(slots=True)
class _Ask:
    command: Command
    timeout: float | None
    result: Completed | None = None
    """None once done: the batch's timeout struck before it finished; it runs on its own."""
    error: TransportError | None = None
    ready: threading.Event = field(default_factory=threading.Event)


class Rounds(Kept):
    """Wraps a node's transport; gathers the reads of `expect(n)` concurrent parties (each a
    thread running one runbook) into one batch per round."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()
        self._live = 0
        """Parties still running."""
        self._waiting: list[_Ask] = []

    def expect(self, parties: int) -> None:
        """`parties` threads will use this transport until each calls `leave()`."""
        with self._lock:
            self._live += parties

    def leave(self) -> None:
        """A party is done: the others may now be all waiting."""
        with self._lock:
            self._live -= 1
            asks = self._take_round()
        if asks:
            self._send(asks)

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        if cmd.readonly and stdin is None and takes_its_time(cmd):
            return self.aside(lambda: self.inner.run(cmd, timeout=timeout))
        with self._lock:
            gather = self._live > 1 and cmd.readonly and stdin is None
            if gather:
                ask = _Ask(cmd, timeout)
                self._waiting.append(ask)
                asks = self._take_round()
        if not gather:
            return self.inner.run(cmd, timeout=timeout, stdin=stdin)
        if asks:
            self._send(asks)
        ask.ready.wait()
        if ask.error is not None:
            raise ask.error
        if ask.result is None:  # the batch's timeout struck first: on its own, its own timeout
            return self.inner.run(cmd, timeout=timeout)
        return ask.result

    def aside(self, wait: Callable[[], T]) -> T:
        """`wait()` (a read on a channel of its own, or the wait for one the read-ahead started)
        while the calling party does not count as live, so that the others' rounds go on."""
        with self._lock:
            step_out = self._live > 1
        if not step_out:
            return wait()
        self.leave()
        try:
            return wait()
        finally:
            self.expect(1)

    def run_aside(self, cmd: Command, *, timeout: float | None = None) -> Completed:
        """For the read-ahead's own thread (no party): straight through, never gathered."""
        return self.inner.run(cmd, timeout=timeout)

    def _take_round(self) -> list[_Ask]:
        """The waiting reads, once every live party waits (call with the lock held)."""
        if not self._waiting or len(self._waiting) < self._live:
            return []
        asks, self._waiting = self._waiting, []
        return asks

    def _send(self, asks: list[_Ask]) -> None:
        """One round trip for `asks` (by the thread that completed the round: all the others
        wait for it)."""
        try:
            if len(asks) == 1:
                one = asks[0]
                one.result = self.inner.run(one.command, timeout=one.timeout)
            else:
                results = self.run_batch([a.command for a in asks],
                                         timeout=shortest(a.timeout for a in asks))
                for ask, result in zip(asks, results, strict=True):
                    ask.result = result
        except TransportError as e:
            for ask in asks:
                ask.error = e
        finally:
            for ask in asks:
                ask.ready.set()

    def get(self, path: str) -> bytes:
        return read_file(self, path)

