"""Read-ahead: a host's predictable read-only commands fetched in one round trip.

A runbook's checks mostly do not depend on each other, yet run one by one, each a channel, a
shell and a round trip on the node (on a 2-core controller from ~50 hosts on, the nodes' sshd
work is what limits wall time). Before a host's steps run, `predict` works out the commands its
read-only steps will send; the first of them to be asked for fetches it and the ones after it
at once (`channel.run_batch`), and each later request for one of them is answered from that
fetch.

Correctness rules:
- only commands the steps will send anyway, rendered exactly as the steps render them: each
  step's kind declares the read-only commands it sends first (`reads(args, ctx)`, pure; see
  `netops.steps.registry`); a step whose templates cannot be rendered before it runs (they
  read registered results) is not predicted;
- a step with `when:` is not predicted (its command may never run); outside a dry run it
  ends a segment: the reads after it are fetched in a batch of their own, when the first of
  them is asked for, so that commands run in their order, at about their time (in a dry run
  nothing changes between them, and all of a host's predicted reads are one batch); nor is
  a `wait` or `reboot` step (a kind with `ENDS_READ_AHEAD`) or any step after it predicted,
  nor (outside a dry run) any step from a mutating one on, on the node or the controller
  (kubectl acts on the node too): their reads must see the state after it;
- an answer is used at most as many times as it was predicted (a retried check asks the node
  again), and any mutating command, `put` or `reset` on the connection drops every unused
  answer;
- a command that did not finish inside the batch (the batch's timeout struck) is run again on
  its own, under its own timeout, so a step never times out because of another step.

The step machinery (dispatch, render, the kinds) is imported lazily: `netops --help` stays
light.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netops.transport.base import (
    Command,
    Completed,
    Transport,
    file_content,
    read_file_command,
)

if TYPE_CHECKING:
    from netops.engine.plan import Plan
    from netops.inventory.model import Host
    from netops.runbook.model import Step

@dataclass(frozen=True, slots=True)
class Read:
    """A read-only command a step will send, with the timeout it will ask for."""

    command: Command
    timeout: float | None


def shortest(timeouts: Iterable[float | None]) -> float | None:
    """A batch's timeout: the shortest of its commands' (a batch must not outlive any)."""
    limits = [t for t in timeouts if t is not None]
    return min(limits) if limits else None


def _key(cmd: Command) -> tuple[str, bool]:
    return cmd.text, cmd.become


_SLEEPS = re.compile(r"(^|[\s;&|(`])sleep\s+(\d+(?:\.\d+)?([smhd]?)\b)?")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def takes_its_time(cmd: Command) -> bool:
    """A read that waits on purpose (its script calls `sleep`: check-conntrack samples a
    counter over 10 s). In a batch it would hold up every command after it, so it runs on a
    channel of its own, beside the batch (`ReadAhead`) or the round (`Rounds`)."""
    return _SLEEPS.search(cmd.text) is not None


def sleeps_for(cmd: Command) -> float:
    """The longest literal `sleep` of the command's script, in seconds (0 when none is
    literal: `sleep $n`)."""
    longest = 0.0
    for m in _SLEEPS.finditer(cmd.text):
        if m.group(2):
            longest = max(longest, float(m.group(2).rstrip("smhd")) * _UNITS[m.group(3)])
    return longest


class _Aside:
    """A read running on its own channel, in a thread of its own; `result` waits for it."""

    def __init__(self, run: Callable[[], Completed]) -> None:
        self._done = threading.Event()
        self._result: Completed | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._go, args=(run,), daemon=True).start()

    def _go(self, run: Callable[[], Completed]) -> None:
        try:
            self._result = run()
        except BaseException as e:  # handed to the step that asks, as a direct run would
            self._error = e
        finally:
            self._done.set()

    def result(self) -> Completed:
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


class ReadAhead:
    """Wraps a host's transport; answers predicted reads from batched fetches.

    `reads` is in the order the steps will ask; None marks a step that could not be
    predicted. The reads between two such marks form a segment, fetched in one batch when
    the first of them is asked for, so that each command still runs at about the time it
    would have (a slow check late in a runbook does not hold up the checks before it).
    """

    def __init__(self, inner: Transport, reads: Sequence[Read | None],
                 hold: Callable[[float], object] | None = None) -> None:
        """`hold(seconds)`: what the quick reads of a batch may wait for (at most `seconds`)
        while a slow read of the same batch runs, e.g. the other nodes' handshakes (see
        `_fetch`)."""
        self.inner = inner
        self.host = inner.host
        self._hold = hold
        self._segments: list[list[Read]] = [[]]
        for read in reads:
            if read is None:
                if self._segments[-1]:
                    self._segments.append([])
            else:
                self._segments[-1].append(read)
        self._segments = [seg for seg in self._segments if seg]
        self._pending = list(range(len(self._segments)))
        """Segments not fetched yet, in order."""
        self._answers: dict[tuple[str, bool], deque[Completed | _Aside | None]] = {}
        self._lock = threading.Lock()
        """Several runbooks may share one host's read-ahead (`netops diagnose`)."""
        self.fetched_from_node = 0
        """How many requests were answered from a batch (for tests and the benchmark)."""

    def prefetch(self) -> None:
        """Fetch the first segment not fetched yet (connecting if needed); raises
        `TransportError` when the host cannot be reached."""
        with self._lock:
            if self._pending:
                self._fetch(self._pending[0])

    def reach(self) -> None:
        """Reach the node: fetch the first segment not fetched yet, and connect the transport
        below if it can (a node with nothing predicted is reached too)."""
        self.prefetch()
        reach = getattr(self.inner, "reach", None)
        if reach is not None:
            reach()

    def _fetch(self, index: int) -> None:
        self._pending.remove(index)
        reads = self._segments[index]
        batch: Callable[..., list[Completed | None]] | None = getattr(
            self.inner, "run_batch", None)
        if batch is None:
            return
        unique = list({_key(r.command): r for r in reads}.values())
        slow = [r for r in unique if takes_its_time(r.command)]
        fast = [r for r in unique if r not in slow]
        aside = getattr(self.inner, "run_aside", self.inner.run)
        done: dict[tuple[str, bool], Completed | _Aside | None] = {
            _key(r.command): _Aside(lambda r=r: aside(r.command, timeout=r.timeout))  # type: ignore[misc]
            for r in slow}
        # The slow reads decide when this node is done; its quick reads, which will be done
        # long before, may wait (up to half the shortest sleep; not at all when one's length
        # is unknown, `sleep $n`) for what `hold` waits for: in diagnose, every other node's
        # handshake, each starting its own slow read, without this node's checks taking the
        # CPU they need.
        held = min((sleeps_for(r.command) for r in slow), default=0.0) / 2
        if fast and held > 0 and self._hold is not None:
            self._hold(held)
        if fast:
            results = batch([r.command for r in fast],
                            timeout=shortest(r.timeout for r in fast))
            done.update((_key(r.command), got) for r, got in zip(fast, results, strict=True))
        for read in reads:
            self._answers.setdefault(_key(read.command), deque()).append(done[_key(read.command)])

    def _answer(self, key: tuple[str, bool]) -> Completed | None:
        with self._lock:
            found = self._answer_locked(key)
            if found is not None:
                self.fetched_from_node += 1
        if not isinstance(found, _Aside):
            return found
        # wait outside the lock, and (under `Rounds`) out of the rounds: the other runbooks
        # on this node go on meanwhile
        wait: Callable[[Callable[[], Completed]], Completed] | None = getattr(
            self.inner, "aside", None)
        return wait(found.result) if wait is not None else found.result()

    def _answer_locked(self, key: tuple[str, bool]) -> Completed | _Aside | None:
        queue = self._answers.get(key)
        if not queue:
            later = next((i for i in self._pending
                          if any(_key(r.command) == key for r in self._segments[i])), None)
            if later is None:
                return None
            self._fetch(later)
            queue = self._answers.get(key)
            if not queue:
                return None
        return queue.popleft()

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        if not cmd.readonly:
            self._drop()
        elif stdin is None:
            done = self._answer(_key(cmd))
            if done is not None:
                return done
        return self.inner.run(cmd, timeout=timeout, stdin=stdin)

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        self._drop()
        self.inner.put(data, path, mode=mode)

    def get(self, path: str) -> bytes:
        done = self._answer(_key(read_file_command(path)))
        return self.inner.get(path) if done is None else file_content(self.host, path, done)

    def reset(self) -> None:
        self._drop()
        reset = getattr(self.inner, "reset", None)
        if reset is not None:
            reset()

    def close(self) -> None:
        self.inner.close()

    def _drop(self) -> None:
        with self._lock:
            self._pending.clear()
            self._answers.clear()


# -- prediction -----------------------------------------------------------------------------
def predict(plan: Plan,
            hosts: Iterable[Host] | None = None) -> dict[str, tuple[Read | None, ...]]:
    """Host name -> the reads its steps will send, in order, None where a node step's command
    cannot be predicted (see the module's rules)."""
    chosen = list(hosts) if hosts is not None else [h for b in plan.batches for h in b]
    return {h.name: tuple(_host_reads(plan, h)) for h in chosen}


def _host_reads(plan: Plan, host: Host) -> list[Read | None]:
    from netops.steps.registry import kind

    reads: list[Read | None] = []
    for step in plan.runbook.steps:
        if kind(step.kind).ENDS_READ_AHEAD or (step.mutates and not plan.dry_run):
            return reads
        if step.on != "node":
            continue
        found: list[Read | None] = [None] if step.when else _declared(plan, host, step)
        if plan.dry_run:  # a dry run's reads are one segment
            found = [r for r in found if r is not None]
        reads += found
    if not plan.dry_run:  # all steps were reads: the health gate follows them directly
        for step in plan.runbook.verify:
            if kind(step.kind).ENDS_READ_AHEAD or step.mutates:
                break
            if step.on == "node":
                reads += [None] if step.when else _declared(plan, host, step, gate=True)
    return reads


def _declared(plan: Plan, host: Host, step: Step, *, gate: bool = False) -> list[Read | None]:
    """The reads `step` declares it sends first on `host`, or [None] when it declares none, or
    its templates need what only the run knows (registered results)."""
    from netops.engine.dispatch import context_vars, reads_of
    from netops.runbook.render import RenderError, render_command, render_text
    from netops.steps.base import StepContext

    variables: Mapping[str, Any] = context_vars(plan.params, host, {}, plan.run_id,
                                               dry_run=plan.dry_run)
    timeout = step.timeout_s or plan.timeout
    # mutates and gate set here already, so that `reads_of` (`step_context`) finds nothing to
    # replace: one copy of the context per step and host saved, and a prediction covers every
    # host of the run
    ctx = StepContext(transport=_UNCONNECTED, dry_run=plan.dry_run, timeout=timeout,
                      become=step.become, secrets=plan.secrets, mutates=step.mutates, gate=gate)
    try:
        commands = reads_of(step, ctx, lambda t: render_command(t, variables, plan.secrets).text,
                            lambda t: render_text(t, variables), gate=gate)
    except RenderError:  # e.g. `{{ earlier.stdout }}`: known only once the run gets there
        return [None]
    return [Read(cmd, timeout) for cmd in commands] or [None]


class _Unconnected:
    """The transport of a prediction: `reads` is pure, so nothing may reach it."""

    host = "prediction"

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        raise AssertionError(f"a kind's `reads` sent {cmd.display!r}")

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        raise AssertionError(f"a kind's `reads` wrote {path}")

    def get(self, path: str) -> bytes:
        raise AssertionError(f"a kind's `reads` fetched {path}")

    def close(self) -> None:
        pass


_UNCONNECTED: Transport = _Unconnected()


def wrap_all(connect: Callable[[Host], Transport],
             reads: Mapping[str, Sequence[Read | None]]) -> Callable[[Host], Transport]:
    """`connect` whose transports read ahead `reads[host.name]` (a host not in `reads`, or
    with nothing to read, gets its plain transport)."""

    def wrapped(host: Host) -> Transport:
        inner = connect(host)
        mine = reads.get(host.name)
        return ReadAhead(inner, mine) if mine and any(mine) else inner

    return wrapped
