"""Read-ahead: a host's predictable read-only commands fetched in one round trip.

A runbook's checks mostly do not depend on each other, yet run one by one, each a channel, a
shell and a round trip on the node (on a 2-core controller from ~50 hosts on, the nodes' sshd
work is what limits wall time). Before a host's steps run, `predict` works out the commands its
read-only steps will send; the first of them to be asked for fetches them all at once
(`channel.run_batch`), and each later request for one of them is answered from that fetch.

Correctness rules:
- only commands the steps will send anyway, rendered exactly as the steps render them: each
  step's kind runs against a probe transport that stops it at its first command;
- a step with `when:` is not predicted (its command may never run), nor any step after a
  `wait` or `reboot` step, nor (outside a dry run) any step after a mutating one, on the node or
  the controller (kubectl acts on the node too): their reads must see the state after it;
- an answer is used at most as many times as it was predicted (a retried check asks the node
  again), and any mutating command, `put` or `reset` on the connection drops every unused
  answer;
- a command that did not finish inside the batch (the batch's timeout struck) is run again on
  its own, under its own timeout, so a step never times out because of another step.

The prediction needs the engine's step machinery; it is imported lazily, and belongs in
`netops.engine` (a `readahead` module there) once that package takes new modules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netops.transport.base import Command, Completed, Transport

if TYPE_CHECKING:
    from netops.engine.execute import Plan
    from netops.inventory.model import Host
    from netops.runbook.model import Step

READ_FILE_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Read:
    """A read-only command a step will send, with the timeout it will ask for."""

    command: Command
    timeout: float | None


def _key(cmd: Command) -> tuple[str, bool]:
    return cmd.text, cmd.become


class ReadAhead:
    """Wraps a host's transport; answers predicted reads from one batched fetch."""

    def __init__(self, inner: Transport, reads: Sequence[Read]) -> None:
        self.inner = inner
        self.host = inner.host
        self._reads = list(reads)
        self._fetched = not self._reads
        self._wanted = Counter(_key(r.command) for r in self._reads)
        self._answers: dict[tuple[str, bool], Completed] = {}
        self.fetched_from_node = 0
        """How many requests were answered from the batch (for tests and the benchmark)."""

    def prefetch(self) -> None:
        """Fetch every predicted read now (connecting if needed); raises `TransportError` when
        the host cannot be reached. A transport without `run_batch` fetches nothing."""
        if self._fetched:
            return
        self._fetched = True
        batch: Callable[..., list[Completed | None]] | None = getattr(
            self.inner, "run_batch", None)
        if batch is None:
            return
        unique = list({_key(r.command): r for r in self._reads}.values())
        limits = [r.timeout for r in unique if r.timeout is not None]
        results = batch([r.command for r in unique], timeout=min(limits) if limits else None)
        for read, done in zip(unique, results, strict=True):
            if done is not None:
                self._answers[_key(read.command)] = done

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        if not cmd.readonly or stdin is not None:
            if not cmd.readonly:
                self._drop()
            return self.inner.run(cmd, timeout=timeout, stdin=stdin)
        key = _key(cmd)
        if self._wanted.get(key, 0) <= 0:
            return self.inner.run(cmd, timeout=timeout, stdin=stdin)
        self.prefetch()
        self._wanted[key] -= 1
        done = self._answers.get(key)
        if done is None:
            return self.inner.run(cmd, timeout=timeout, stdin=stdin)
        if self._wanted[key] <= 0:
            del self._answers[key]
        self.fetched_from_node += 1
        return done

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        self._drop()
        self.inner.put(data, path, mode=mode)

    def get(self, path: str) -> bytes:
        from netops.errors import TransportError
        from netops.transport.ssh import read_file_command

        cmd = read_file_command(path)
        if self._wanted.get(_key(cmd), 0) <= 0:
            return self.inner.get(path)
        done = self.run(cmd, timeout=READ_FILE_TIMEOUT)
        if not done.ok:
            raise TransportError(self.host, f"reading {path} failed: {done.stderr.strip()}")
        return done.stdout.encode()

    def reset(self) -> None:
        self._drop()
        reset = getattr(self.inner, "reset", None)
        if reset is not None:
            reset()

    def close(self) -> None:
        self.inner.close()

    def _drop(self) -> None:
        self._fetched = True
        self._answers.clear()
        self._wanted.clear()


# -- prediction -----------------------------------------------------------------------------
class _First(BaseException):
    """Raised by the probe at a step's first command (a BaseException, so that no step kind
    can catch it as an ordinary failure)."""

    def __init__(self, command: Command | None, timeout: float | None,
                 stdin: bytes | None) -> None:
        self.command, self.timeout, self.stdin = command, timeout, stdin


class _Probe:
    host = "probe"

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        raise _First(cmd, timeout, stdin)

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        raise _First(None, None, data)

    def get(self, path: str) -> bytes:
        from netops.transport.ssh import read_file_command

        raise _First(read_file_command(path), READ_FILE_TIMEOUT, None)

    def close(self) -> None:
        pass


STOPPERS = frozenset({"wait", "reboot"})
"""Step kinds after which nothing is predicted: the node's state is expected to move."""


def predict(plan: Plan, hosts: Iterable[Host] | None = None) -> dict[str, tuple[Read, ...]]:
    """Host name -> the reads its steps will send, in order (see the module's rules)."""
    chosen = list(hosts) if hosts is not None else [h for b in plan.batches for h in b]
    return {h.name: tuple(_host_reads(plan, h)) for h in chosen}


def _host_reads(plan: Plan, host: Host) -> list[Read]:
    steps = list(plan.runbook.steps)
    reads: list[Read] = []
    for step in steps:
        if step.kind in STOPPERS or (step.mutates and not plan.dry_run):
            return reads
        if step.on != "node" or step.when:
            continue
        read = _first_read(plan, host, step)
        if read is not None:
            reads.append(read)
    if not plan.dry_run:  # all steps were reads: the health gate follows them directly
        for step in plan.runbook.verify:
            if step.kind in STOPPERS or step.mutates:
                break
            if step.on == "node" and not step.when:
                read = _first_read(plan, host, step, gate=True)
                if read is not None:
                    reads.append(read)
    return reads


def _first_read(plan: Plan, host: Host, step: Step, *, gate: bool = False) -> Read | None:
    from netops.engine.dispatch import context_vars, run_kind
    from netops.runbook.render import render_command, render_text
    from netops.steps.base import StepContext
    from netops.transport.readonly import ReadOnlyTransport

    variables: Mapping[str, Any] = context_vars(plan.params, host, {}, plan.run_id)
    probe: Transport = _Probe()
    ctx = StepContext(
        transport=ReadOnlyTransport(probe) if plan.dry_run else probe, dry_run=plan.dry_run,
        timeout=step.timeout_s or plan.timeout, become=step.become, secrets=plan.secrets)
    try:
        run_kind(step, ctx, lambda t: render_command(t, variables, plan.secrets).text,
                 lambda t: render_text(t, variables), gate=gate)
    except _First as first:
        cmd = first.command
        if cmd is None or not cmd.readonly or first.stdin is not None:
            return None
        return Read(cmd, first.timeout)
    except Exception:  # a template that needs registered results, a refused write, ...
        return None
    return None


def wrap_all(connect: Callable[[Host], Transport],
             reads: Mapping[str, Sequence[Read]]) -> Callable[[Host], Transport]:
    """`connect` whose transports read ahead `reads[host.name]` (a host not in `reads`, or
    with nothing to read, gets its plain transport)."""

    def wrapped(host: Host) -> Transport:
        inner = connect(host)
        mine = reads.get(host.name)
        return ReadAhead(inner, mine) if mine else inner

    return wrapped
