"""The transport contract shared by the SSH and local transports.

A nonzero exit code is data (`Completed.rc`), never an exception; transports raise only
`netops.errors.TransportError` subclasses, for failures to reach a host or finish a command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

MASK = "***"


@dataclass(frozen=True, slots=True)
class Command:
    """A shell command line to run, with the secret values it embeds."""

    text: str
    """What the remote shell receives, secrets included."""
    secrets: frozenset[str] = field(default_factory=frozenset)
    """Values replaced by `***` wherever the command is shown or stored."""
    become: bool = False
    """Run through `sudo -n` (non-interactive) when the login user is not root."""
    readonly: bool = False
    """True for probes and checks: the only commands a dry run lets through."""
    detached: bool = False
    """Meant to outlive its session (a reboot): not killed when the connection goes away."""

    @property
    def display(self) -> str:
        """The command as it may be shown or journaled: every secret masked."""
        return mask(self.text, self.secrets)


def mask(text: str, secrets: frozenset[str]) -> str:
    """Replace every secret value in `text` by `***`, in every form it may take there: raw,
    shell-quoted, JSON- or repr-escaped, line by line for a multi-line one
    (`netops.masking.secret_forms`; longest first, so overlaps mask whole)."""
    if not secrets or not text:
        return text
    from netops.masking import mask_forms

    return mask_forms(text, secrets, MASK)


def secret_forms(secrets: frozenset[str]) -> frozenset[str]:
    """Every string `mask` replaces for these secret values."""
    from netops.masking import secret_forms as forms

    return forms(secrets)


@dataclass(frozen=True, slots=True)
class Completed:
    """The outcome of a command that ran to its end (whatever its exit code)."""

    rc: int
    """Exit status; -1 when the remote side reported none."""
    stdout: str
    stderr: str
    duration_s: float
    truncated: int = 0
    """Bytes of output cut from the middle of stdout and stderr (each keeps its head and
    tail, with a `[... N bytes cut ...]` line between)."""

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.rc == 0


READ_FILE_TIMEOUT = 60.0


def read_file_command(path: str) -> Command:
    """The command behind `get(path)` (a read-ahead may fetch it with other reads)."""
    import shlex

    return Command(f"cat {shlex.quote(path)}", become=True, readonly=True)


def file_content(host: str, path: str, done: Completed) -> bytes:
    """What `get(path)` returns, from the outcome of `read_file_command(path)`."""
    if not done.ok:
        from netops.errors import TransportError

        raise TransportError(host, f"reading {path} failed: {done.stderr.strip()}")
    return done.stdout.encode()


def read_file(t: Transport, path: str) -> bytes:
    """`get(path)` for a transport that reads files with `read_file_command` through its own
    `run` (so that the read is gathered, batched or refused like any other command)."""
    return file_content(t.host, path, t.run(read_file_command(path), timeout=READ_FILE_TIMEOUT))


class Transport(Protocol):
    """One connection to one host, opened lazily and reused for every command."""

    host: str

    def run(
        self, cmd: Command, *, timeout: float | None = None, stdin: bytes | None = None
    ) -> Completed:
        """Run `cmd` to completion; raise `TimedOut` after `timeout` seconds (the command is
        killed on the host) and `ConnectionLost`/`Unreachable` when the host goes away."""
        ...

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        """Write `data` to `path` on the host atomically (temp file + rename)."""
        ...

    def get(self, path: str) -> bytes:
        """Read the file at `path` on the host."""
        ...

    def close(self) -> None:
        """Close the connection; safe to call more than once."""
        ...


class HostKeyMode(StrEnum):
    """How unknown host keys are treated (a changed key is refused in every mode but `off`)."""

    STRICT = "strict"
    """Unknown keys are refused: the host must already be in a known_hosts file."""
    ACCEPT_NEW = "accept-new"
    """Unknown keys are recorded in netops' own known_hosts file and accepted."""
    OFF = "off"
    """No checking at all: for throw-away labs only; netops warns on every run."""


def unexpected_rc(rc: int | None, expected: int | None = 0) -> str:
    """Why an exit code means the command itself did not run as written (the shell could not
    find or execute it, or a signal killed it), unless the author expected exactly it; empty
    for an ordinary exit code. Such a check is an error, never a finding: it says nothing
    about the node."""
    if rc is None or rc == expected:
        return ""
    if rc == 127:
        return "command not found (rc 127)"
    if rc == 126:
        return "command not executable (rc 126)"
    if 128 < rc <= 128 + 64:
        import signal

        try:
            name = signal.Signals(rc - 128).name
        except ValueError:
            name = f"signal {rc - 128}"
        return f"killed by {name} (rc {rc})"
    if rc < -1:  # a local command (Python reports a signal as minus its number)
        return unexpected_rc(128 - rc, expected)
    if rc < 0:  # over SSH: sshd sent no exit status (a signal ended the session's command)
        return "no exit status (killed by a signal, or its session ended)"
    return ""
