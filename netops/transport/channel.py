"""Run one command on an open paramiko transport, straight on a session channel.

Invoke's runner (what Fabric's `Connection.run` uses) polls its IO threads every 10 ms; here a
`select` on the channel wakes exactly when data or EOF arrives, and stdout and stderr are drained
together so a chatty stderr can never stall the remote side.

Three promises hold when things go wrong (issue 14):

- **The command dies with its session.** Without a pty sshd sends no SIGHUP, so a command would
  outlive a controller that was killed or lost its connection. Each command runs under a small
  POSIX-sh guard (`launch`): a forked watcher blocks on the channel's stdin, which the controller
  keeps open until the command has ended; sshd closes it when the channel or the connection goes
  away. At that EOF, if the command is still running, the watcher signals its whole process
  group (TERM, then KILL after `KILL_GRACE_S`). A normal end never kills anything: by the time
  sshd closes stdin it has reaped the command. `Command.detached` commands get no watcher.
- **Secrets never reach an argv on the node.** A command whose text embeds one of its secrets
  is not put on a command line: the guard reads the script from stdin (`head -c N`) and hands
  it to `sh` through a here-document on fd 4 (a pipe, or a 0600 file the shell removes).
- **Output is bounded.** Each stream keeps its first and last bytes (`bounded.Bounded`); what
  is cut between is counted (`Completed.truncated`) and marked in the text.

And a dead peer is found fast: `Keepalive` probes a silent connection (see `_Watchdog`).
"""

from __future__ import annotations

import re
import secrets
import select
import shlex
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from netops.errors import ConnectionLost, TimedOut
from netops.transport._paramiko import paramiko
from netops.transport.base import Command, Completed
from netops.transport.bounded import Bounded

KILL_GRACE_S = 2.0
"""Seconds between the node-side TERM and KILL at a command's timeout (or its session's end)."""
BACKSTOP_S = 5.0
"""Extra seconds the controller waits past a timeout before it gives up on the channel."""
TIMEOUT_RCS = frozenset({124, 137})
"""Exit codes of coreutils `timeout` when it had to stop the command (TERM, then KILL)."""
GUARD_FAILED = 125
"""Exit code of the guard when it could not set the command up (as coreutils `timeout`)."""


@dataclass(frozen=True, slots=True)
class Keepalive:
    """ssh_config's ServerAliveInterval / ServerAliveCountMax, as OpenSSH counts them: a probe
    after `interval` seconds without a word from the peer, which is dead when `count_max` more
    intervals pass without an answer (OpenSSH gives up after interval x (count_max + 1))."""

    interval: float = 10.0
    count_max: int = 3

    @property
    def dead_after(self) -> float:
        """Seconds of silence after which the peer is declared dead."""
        return self.interval * (self.count_max + 1)


DEFAULT_KEEPALIVE = Keepalive()


# -- the command line ---------------------------------------------------------------------------
def sudo_prefix(user: str = "root") -> str:
    """`sudo -n --` (root), or `sudo -n -u USER --`: never a password prompt."""
    return "sudo -n -- " if user == "root" else f"sudo -n -u {shlex.quote(user)} -- "


def wrap(cmd: Command, *, timeout: float | None, sudo: bool, user: str = "root") -> str:
    """One command inside a batch script (`batch_script`): the batch's own guard handles the
    session's end; `timeout` (node-side coreutils `timeout`, which signals the command's whole
    process group) and `sudo -n` are applied here."""
    text = cmd.text
    if timeout is not None:
        text = f"timeout -k {KILL_GRACE_S:g} {timeout:g} sh -c {shlex.quote(text)}"
    if sudo and embeds_secret(cmd):
        # not on sudo's argv: the script goes to `sh -s` on stdin, a quoted here-document
        # (sudo closes other descriptors); the batch itself came through stdin (`launch`)
        end = f"NETOPS_SUDO_{secrets.token_hex(8)}"
        return f"{sudo_prefix(user)}sh -s <<'{end}'\n{text}\n{end}"
    if sudo:
        text = f"{sudo_prefix(user)}sh -c {shlex.quote(text)}"
    return text


def embeds_secret(cmd: Command) -> bool:
    """True when the command's text carries one of its secrets, in any form that masking
    would hide (raw, shell-quoted, escaped...): then it must stay off every argv."""
    return bool(cmd.secrets) and cmd.display != cmd.text


_WATCH = (
    # stdin is the channel's: EOF when the controller closes the channel or the connection
    # dies (or when sshd, having reaped the command, closes it: then $$ is gone, nothing to do)
    "{{ while read -r _; do :; done; kill -0 $$ 2>/dev/null || exit 0; trap '' TERM; "
    "kill -TERM -$$ 2>/dev/null || kill -TERM $$; sleep {grace}; "
    "kill -KILL -$$ 2>/dev/null || kill -KILL $$; }} <&3 >/dev/null 2>&1 3<&- 5<&- &\n"
)


def launch(cmd: Command, *, timeout: float | None, sudo: bool,
           stdin: bytes | None = None, user: str = "root",
           inline: bool = False) -> tuple[str, bytes]:
    """The exec request's command line for `cmd`, and the bytes to send on the channel's stdin
    right after it (the script when it embeds a secret, then `stdin`).

    The line is `exec [sudo -n --] sh -c GUARD`. The guard keeps its pid through `exec`s, so
    the command's process group is known in advance: without sudo the guard is sshd's session
    child, a session and group leader; under sudo coreutils `timeout` (always used there, with
    0 for "no limit") makes the group. The watcher is forked before the command is exec'd
    (one `sh` and one fork more than a bare command; no extra round trip).

    `inline` (a batch, never under sudo itself): `cmd` is a `batch_script`, which runs in the
    guard's own shell, without `sh -c` (unless it embeds a secret: then it comes on stdin)
    and without a node-side `timeout`: two execs and a fork less, ~3 ms of the node's CPU a
    batch. `run_batch` stops it at its timeout by closing the channel's stdin, on which the
    watcher stops the batch's process group as it does when the session ends."""
    lines = []
    if not cmd.detached:
        lines.append("exec 3<&0\n")
    script = cmd.text.encode() if embeds_secret(cmd) else None
    if script is not None:
        lines.append(f"s=$(head -c {len(script)}) || exit {GUARD_FAILED}\n")
    if stdin is not None:
        # to a file first (opened, then unlinked): the watcher must be the only reader of the
        # channel's stdin once the command runs
        lines.append(f'f=$(mktemp) || exit {GUARD_FAILED}; head -c {len(stdin)} >"$f"; '
                     f'exec 5<"$f"; rm -f "$f"\n')
    if not cmd.detached:
        lines.append(_WATCH.format(grace=f"{KILL_GRACE_S:g}"))
    run = "exec "
    if not inline and (timeout is not None or sudo):
        run += f"timeout -k {KILL_GRACE_S:g} {0 if timeout is None else timeout:g} "
    redirect = "<&5 5<&-" if stdin is not None else "</dev/null"
    if not cmd.detached:
        redirect += " 3<&-"
    if inline and script is None:
        lines.append(cmd.text)  # each command in it redirects its own stdin (batch_script)
    elif script is None:
        lines.append(f"{run}sh -c {shlex.quote(cmd.text)} {redirect}\n")
    else:
        # fd 4 stays open in the script's own shell only until its first word closes it
        lines.append(f"{run}sh /dev/fd/4 {redirect} 4<<NETOPS_SCRIPT_END\n"
                     "exec 4<&-;$s\nNETOPS_SCRIPT_END\n")
    guard = "".join(lines)
    line = f"exec {sudo_prefix(user) if sudo else ''}sh -c {shlex.quote(guard)}"
    return line, (script or b"") + (stdin or b"")


# -- batch output -------------------------------------------------------------------------------
class _Parts:
    """One stream of a batch, split at its marker lines as it arrives, each part bounded."""

    def __init__(self, sep: bytes, status: bool) -> None:
        self.sep = sep
        self.status = status
        """Whether each marker is followed by an exit status line (stdout's)."""
        self.done: list[tuple[Bounded, int]] = []
        self._current = Bounded()
        self._pending = b""
        self._in_status = False
        self._status = b""

    def feed(self, data: bytes) -> None:
        buf = self._pending + data if self._pending else data
        self._pending = b""
        pos = 0
        while True:
            if self._in_status:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    self._status = (self._status + buf[pos:])[:64]
                    return
                status = self._status + buf[pos:nl]
                self._status, self._in_status, pos = b"", False, nl + 1
                try:
                    rc = int(status)
                except ValueError:
                    rc = -1
                self.done[-1] = (self.done[-1][0], rc)
                continue
            found = buf.find(self.sep, pos)
            if found < 0:
                keep = max(pos, len(buf) - len(self.sep) + 1)
                self._current.feed(buf[pos:keep])
                self._pending = buf[keep:]
                return
            self._current.feed(buf[pos:found])
            self.done.append((self._current, -2 if self.status else 0))
            self._current = Bounded()
            pos = found + len(self.sep)
            self._in_status = self.status

    def part(self, i: int) -> tuple[Bounded, int] | None:
        """The i-th part, once its marker (and status line) arrived."""
        if i >= len(self.done) or self.done[i][1] == -2:
            return None
        return self.done[i]


# -- running ------------------------------------------------------------------------------------
def run_on_channel(
    transport: paramiko.Transport,
    host: str,
    cmd: Command,
    *,
    timeout: float | None,
    sudo: bool,
    stdin: bytes | None = None,
    channel: paramiko.Channel | None = None,
    keepalive: Keepalive | None = DEFAULT_KEEPALIVE,
    user: str = "root",
) -> Completed:
    """Run `cmd` on a fresh session channel of `transport` (or on `channel`, opened ahead and
    unused) and collect its outcome; with `sudo`, as `user`."""
    out, err = Bounded(), Bounded()
    rc, elapsed = _exec(transport, host, cmd, timeout=timeout, sudo=sudo, stdin=stdin,
                        channel=channel, sinks=(out, err), keepalive=keepalive, user=user)
    if timeout is not None and rc in TIMEOUT_RCS and elapsed >= timeout:
        raise TimedOut(host, f"{cmd.display!r} ran longer than {timeout:g}s and was killed")
    return Completed(rc=rc, stdout=out.text(), stderr=err.text(), duration_s=elapsed,
                     truncated=out.cut + err.cut)


def run_batch(
    transport: paramiko.Transport,
    host: str,
    cmds: Sequence[Command],
    *,
    timeout: float | None,
    sudo: bool,
    channel: paramiko.Channel | None = None,
    keepalive: Keepalive | None = DEFAULT_KEEPALIVE,
    user: str = "root",
) -> list[Completed | None]:
    """Run read-only `cmds` one after the other in ONE remote shell (one channel, one round
    trip) and split their outcomes apart; None for each command that did not finish.

    Each command runs in its own subshell with stdin from /dev/null, as its own `sh -c` would;
    after each, a random marker line with its exit status goes to stdout and a marker line to
    stderr. `timeout` (node-side, as for one command) bounds the whole batch: if it strikes,
    the commands that finished keep their results and the rest are reported as not finished,
    so that each can be run again on its own, under its own timeout. Each command's output is
    bounded as a single command's is (the streams are split as they arrive).
    """
    mark = f"--netops-{secrets.token_hex(8)}--"
    batch = Command(batch_script(cmds, mark, sudo=sudo, user=user), readonly=True,
                    secrets=frozenset().union(*(c.secrets for c in cmds if embeds_secret(c))))
    out, err = _batch_parts(mark)
    _exec(transport, host, batch, timeout=timeout, sudo=False, channel=channel,
          sinks=(out, err), keepalive=keepalive, batch=True)
    return _outcomes(out, err, len(cmds))


def batch_script(cmds: Sequence[Command], mark: str, *, sudo: bool, user: str = "root") -> str:
    """The shell script of `run_batch`: each command in a subshell (a simple command that
    cannot change the shell's state runs without one: a fork less), with stdin from /dev/null
    and without the channel's stdin (fd 3, the watcher's), then its markers."""
    lines = []
    for c in cmds:
        text = wrap(c, timeout=None, sudo=sudo and c.become, user=user)
        if not simple_command(text):
            text = f"(\n{text}\n)"
        lines.append(f"{text} </dev/null 3<&-; printf '\\n%s:%d\\n' {mark} $?; "
                     f"printf '\\n%s\\n' {mark} >&2\n")
    return "".join(lines)


_SIMPLE = re.compile(r"[A-Za-z0-9_./-]+(?:[ \t]+[A-Za-z0-9_./:,@%+=-]+)*")
"""Words of plain characters only: no quoting, expansion, redirection, operator or glob."""
_STATEFUL = frozenset({
    ".", "alias", "bg", "break", "builtin", "cd", "chdir", "command", "continue", "declare",
    "eval", "exec", "exit", "export", "fc", "fg", "getopts", "hash", "jobs", "let", "local",
    "read", "readonly", "return", "set", "shift", "source", "trap", "typeset", "ulimit",
    "umask", "unalias", "unset", "wait"})
"""Builtins that change the shell running them (or end it): never run outside a subshell."""


def simple_command(text: str) -> bool:
    """A command that behaves the same in the batch's shell as in a subshell of its own: an
    external program or a harmless builtin, with plain words as arguments."""
    return _SIMPLE.fullmatch(text) is not None and text.split(None, 1)[0] not in _STATEFUL


def split_batch(out: bytes, err: bytes, mark: str, count: int) -> list[Completed | None]:
    """`count` outcomes from a batch's two streams; None for each that has no markers."""
    outs, errs = _batch_parts(mark)
    outs.feed(out)
    errs.feed(err)
    return _outcomes(outs, errs, count)


def _batch_parts(mark: str) -> tuple[_Parts, _Parts]:
    return _Parts(f"\n{mark}:".encode(), status=True), _Parts(f"\n{mark}\n".encode(),
                                                              status=False)


def _outcomes(outs: _Parts, errs: _Parts, count: int) -> list[Completed | None]:
    results: list[Completed | None] = []
    for i in range(count):
        o, e = outs.part(i), errs.part(i)
        if o is None or e is None:
            results.append(None)  # killed (batch timeout) before this one finished
            continue
        results.append(Completed(rc=o[1], stdout=o[0].text(), stderr=e[0].text(),
                                 duration_s=0.0,  # not timed one by one
                                 truncated=o[0].cut + e[0].cut))
    return results


def _exec(
    transport: paramiko.Transport,
    host: str,
    cmd: Command,
    *,
    timeout: float | None,
    sudo: bool,
    sinks: tuple[Bounded | _Parts, Bounded | _Parts],
    stdin: bytes | None = None,
    channel: paramiko.Channel | None = None,
    keepalive: Keepalive | None = DEFAULT_KEEPALIVE,
    user: str = "root",
    batch: bool = False,
) -> tuple[int, float]:
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout + KILL_GRACE_S + BACKSTOP_S
    stop_at = started + timeout if batch and timeout is not None else None
    line, payload = launch(cmd, timeout=timeout, sudo=sudo, stdin=stdin, user=user,
                           inline=batch)
    try:
        chan = channel or transport.open_session(timeout=30)
    except (paramiko.SSHException, OSError, EOFError) as e:
        raise ConnectionLost(host, f"could not open a channel: {e}") from e
    watchdog = None if keepalive is None else _Watchdog(transport, keepalive)
    try:
        chan.exec_command(line)
        if payload:
            chan.sendall(payload)
        if cmd.detached:
            chan.shutdown_write()
        # else the write side stays open until the command ends: its EOF is the guard's
        # signal that the controller went away
        _drain(chan, host, deadline, sinks, watchdog, stop_at)
        rc = chan.recv_exit_status() if chan.exit_status_ready() else -1
    except (paramiko.SSHException, OSError, EOFError) as e:
        raise ConnectionLost(host, f"while running {cmd.display!r}: {e}") from e
    finally:
        chan.close()
    elapsed = time.monotonic() - started
    if rc == -1 and not transport.is_active():
        raise ConnectionLost(host, f"the connection dropped while running {cmd.display!r}; "
                                   "its outcome on the node is unknown")
    return rc, elapsed


def _drain(chan: paramiko.Channel, host: str, deadline: float | None,
           sinks: tuple[Bounded | _Parts, Bounded | _Parts],
           watchdog: _Watchdog | None, stop_at: float | None = None) -> None:
    """Read the command's output until its channel ends. At `stop_at` (a batch's timeout),
    close the channel's stdin: the node-side watcher then stops the command's process group
    (TERM, KILL after the grace), and the channel ends."""
    out, err = sinks
    while True:
        if stop_at is not None and time.monotonic() >= stop_at:
            chan.shutdown_write()
            stop_at = None
        if chan.recv_ready():
            out.feed(chan.recv(262144))
            if watchdog is not None:
                watchdog.heard = time.monotonic()
            continue
        if chan.recv_stderr_ready():
            err.feed(chan.recv_stderr(262144))
            if watchdog is not None:
                watchdog.heard = time.monotonic()
            continue
        if chan.eof_received or chan.closed:
            # all output is in: wait only for the exit status (or the channel's end)
            if chan.exit_status_ready() or chan.closed:
                return
            chan.status_event.wait(_wait(deadline, host, watchdog, stop_at))
            continue
        select.select([chan], [], [], _wait(deadline, host, watchdog, stop_at))
        if not chan.get_transport().is_active() and not chan.recv_ready():
            return


def _wait(deadline: float | None, host: str, watchdog: _Watchdog | None,
          stop_at: float | None = None) -> float:
    """How long to sleep before looking again (at most 5 s, to notice a dead transport;
    at most until `stop_at`); raise when the command's time is up or the peer is found dead."""
    now = time.monotonic()
    wait = 5.0 if stop_at is None else min(5.0, stop_at - now)
    if deadline is not None:
        left = deadline - now
        if left <= 0:
            raise TimedOut(host, "no answer from the node past the command's timeout")
        wait = min(left, wait)
    if watchdog is not None:
        wait = min(wait, watchdog.check(now, host))
    return max(wait, 0.01)


class _Watchdog:
    """Finds a dead peer while a command runs, whatever its timeout.

    A silent command (`sleep 250`) leaves the connection idle; if the node then vanishes
    without a FIN or RST (power loss, a firewall dropping packets), TCP alone notices nothing
    for hours. After `interval` seconds with nothing heard, this sends OpenSSH's
    `keepalive@openssh.com` global request with want-reply (any reply, even a refusal, proves
    the peer alive) and declares the connection dead when none comes `interval x count_max`
    seconds later: the transport is closed and `ConnectionLost` raised.

    It uses only paramiko's public API: `Transport.set_keepalive` only sends (it never checks
    for an answer), and the time of the last packet received is private to paramiko's
    packetizer; so the probe is `Transport.global_request(wait=True)` on a short-lived daemon
    thread, started only when a command has been silent for a whole interval. It covers every
    kind of connection (a direct socket, a ProxyJump channel, a ProxyCommand pipe) and a peer
    that still ACKs TCP but no longer answers SSH (a hung sshd). Direct sockets also get TCP
    keepalives and TCP_USER_TIMEOUT from the same settings (`ssh._tcp_socket`), which also
    cover a connection idle between commands.
    """

    def __init__(self, transport: paramiko.Transport, keepalive: Keepalive) -> None:
        self.transport = transport
        self.keepalive = keepalive
        self.heard = time.monotonic()
        """When the peer was last heard from (output, or an answer to a probe)."""
        self._sent: float | None = None
        self._answered: float | None = None

    def check(self, now: float, host: str) -> float:
        """Seconds until the next check; raises `ConnectionLost` when the peer is dead."""
        ka = self.keepalive
        if self._answered is not None:
            self.heard = max(self.heard, self._answered)
            self._sent = self._answered = None
        if self._sent is not None and self.heard < self._sent:
            if now - self._sent >= ka.interval * ka.count_max:
                self.transport.close()
                raise ConnectionLost(
                    host, f"no answer from the node for {now - self.heard:.0f}s "
                    f"(ServerAliveInterval {ka.interval:g} x ServerAliveCountMax "
                    f"{ka.count_max}); the connection is presumed dead and the command's "
                    "outcome on the node is unknown")
            return self._sent + ka.interval * ka.count_max - now
        if now - self.heard >= ka.interval:
            self._probe(now)
            return ka.interval * ka.count_max
        return self.heard + ka.interval - now

    def _probe(self, now: float) -> None:
        self._sent = now
        self._answered = None
        transport = self.transport

        def ask() -> None:
            try:
                transport.global_request("keepalive@openssh.com", wait=True)
            except Exception:  # a dead transport: the check will say so
                return
            if transport.is_active():
                self._answered = time.monotonic()

        threading.Thread(target=ask, name="netops-keepalive", daemon=True).start()
