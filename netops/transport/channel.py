"""Run one command on an open paramiko transport, straight on a session channel.

Invoke's runner (what Fabric's `Connection.run` uses) polls its IO threads every 10 ms; here a
`select` on the channel wakes exactly when data or EOF arrives, and stdout and stderr are drained
together so a chatty stderr can never stall the remote side.
"""

from __future__ import annotations

import secrets
import select
import shlex
import time
from collections.abc import Sequence

from netops.errors import ConnectionLost, TimedOut
from netops.transport._paramiko import paramiko
from netops.transport.base import Command, Completed

KILL_GRACE_S = 2.0
"""Seconds between the node-side TERM and KILL at a command's timeout."""
BACKSTOP_S = 5.0
"""Extra seconds the controller waits past a timeout before it gives up on the channel."""
TIMEOUT_RCS = frozenset({124, 137})
"""Exit codes of coreutils `timeout` when it had to stop the command (TERM, then KILL)."""


def wrap(cmd: Command, *, timeout: float | None, sudo: bool) -> str:
    """The command line sent to the remote shell.

    A timeout is enforced on the node by coreutils `timeout`, which signals the command's whole
    process group, so a hung command leaves no orphans even if the controller goes away.
    """
    text = cmd.text
    if timeout is not None:
        text = f"timeout -k {KILL_GRACE_S:g} {timeout:g} sh -c {shlex.quote(text)}"
    if sudo:
        text = f"sudo -n -- sh -c {shlex.quote(text)}"
    return text


def run_on_channel(
    transport: paramiko.Transport,
    host: str,
    cmd: Command,
    *,
    timeout: float | None,
    sudo: bool,
    stdin: bytes | None = None,
    channel: paramiko.Channel | None = None,
) -> Completed:
    """Run `cmd` on a fresh session channel of `transport` (or on `channel`, opened ahead and
    unused) and collect its outcome."""
    rc, out, err, elapsed = _exec(transport, host, cmd, timeout=timeout, sudo=sudo, stdin=stdin,
                                  channel=channel)
    if timeout is not None and rc in TIMEOUT_RCS and elapsed >= timeout:
        raise TimedOut(host, f"{cmd.display!r} ran longer than {timeout:g}s and was killed")
    return Completed(rc=rc, stdout=out.decode("utf-8", "replace"),
                     stderr=err.decode("utf-8", "replace"), duration_s=elapsed)


def run_batch(
    transport: paramiko.Transport,
    host: str,
    cmds: Sequence[Command],
    *,
    timeout: float | None,
    sudo: bool,
    channel: paramiko.Channel | None = None,
) -> list[Completed | None]:
    """Run read-only `cmds` one after the other in ONE remote shell (one channel, one round
    trip) and split their outcomes apart; None for each command that did not finish.

    Each command runs in its own subshell with stdin from /dev/null, as its own `sh -c` would;
    after each, a random marker line with its exit status goes to stdout and a marker line to
    stderr. `timeout` (node-side, as for one command) bounds the whole batch: if it strikes,
    the commands that finished keep their results and the rest are reported as not finished,
    so that each can be run again on its own, under its own timeout.
    """
    mark = f"--netops-{secrets.token_hex(8)}--"
    batch = Command(batch_script(cmds, mark, sudo=sudo), readonly=True)
    _, out, err, _ = _exec(transport, host, batch, timeout=timeout, sudo=False, channel=channel)
    return split_batch(out, err, mark, len(cmds))


def batch_script(cmds: Sequence[Command], mark: str, *, sudo: bool) -> str:
    """The shell script of `run_batch`: each command in a subshell, then its markers."""
    return "".join(
        f"(\n{wrap(c, timeout=None, sudo=sudo and c.become)}\n) </dev/null; "
        f"printf '\\n%s:%d\\n' {mark} $?; printf '\\n%s\\n' {mark} >&2\n"
        for c in cmds)


def split_batch(out: bytes, err: bytes, mark: str, count: int) -> list[Completed | None]:
    """`count` outcomes from a batch's two streams; None for each that has no markers."""
    outs = out.split(f"\n{mark}:".encode())
    errs = err.split(f"\n{mark}\n".encode())
    results: list[Completed | None] = []
    for i in range(count):
        if i + 1 >= len(outs) or i + 1 >= len(errs):
            results.append(None)  # killed (batch timeout) before this one finished
            continue
        status = outs[i + 1].partition(b"\n")[0]
        stdout = outs[i] if i == 0 else outs[i].partition(b"\n")[2]
        results.append(Completed(rc=int(status), stdout=stdout.decode("utf-8", "replace"),
                                 stderr=errs[i].decode("utf-8", "replace"),
                                 duration_s=0.0))  # not timed one by one
    return results


def _exec(
    transport: paramiko.Transport,
    host: str,
    cmd: Command,
    *,
    timeout: float | None,
    sudo: bool,
    stdin: bytes | None = None,
    channel: paramiko.Channel | None = None,
) -> tuple[int, bytes, bytes, float]:
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout + KILL_GRACE_S + BACKSTOP_S
    try:
        chan = channel or transport.open_session(timeout=30)
    except (paramiko.SSHException, OSError, EOFError) as e:
        raise ConnectionLost(host, f"could not open a channel: {e}") from e
    try:
        chan.exec_command(wrap(cmd, timeout=timeout, sudo=sudo))
        if stdin is not None:
            chan.sendall(stdin)
        chan.shutdown_write()
        out, err = _drain(chan, host, deadline)
        rc = chan.recv_exit_status() if chan.exit_status_ready() else -1
    except (paramiko.SSHException, OSError, EOFError) as e:
        raise ConnectionLost(host, f"while running {cmd.display!r}: {e}") from e
    finally:
        chan.close()
    elapsed = time.monotonic() - started
    if rc == -1 and not transport.is_active():
        raise ConnectionLost(host, f"the connection dropped while running {cmd.display!r}; "
                                   "its outcome on the node is unknown")
    return rc, out, err, elapsed


def _drain(chan: paramiko.Channel, host: str, deadline: float | None) -> tuple[bytes, bytes]:
    out: list[bytes] = []
    err: list[bytes] = []
    while True:
        if chan.recv_ready():
            out.append(chan.recv(65536))
            continue
        if chan.recv_stderr_ready():
            err.append(chan.recv_stderr(65536))
            continue
        if chan.eof_received or chan.closed:
            # all output is in: wait only for the exit status (or the channel's end)
            if chan.exit_status_ready() or chan.closed:
                return b"".join(out), b"".join(err)
            chan.status_event.wait(_remaining(deadline, host))
            continue
        wait = _remaining(deadline, host)
        select.select([chan], [], [], wait)
        if not chan.get_transport().is_active() and not chan.recv_ready():
            return b"".join(out), b"".join(err)


def _remaining(deadline: float | None, host: str) -> float | None:
    if deadline is None:
        return 5.0  # wake now and then to notice a dead transport
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimedOut(host, "no answer from the node past the command's timeout")
    return min(left, 5.0)
