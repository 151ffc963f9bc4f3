"""What every step kind receives and returns, and how a kind declares its arguments.

A kind is one module (see `netops.steps.registry`): a frozen `Args` dataclass whose fields
carry their format in `arg(...)` metadata (the runbook schema and validation are derived from
it), `reads(args, ctx)` -- the read-only commands it sends first, pure, so that a dry run and
the read-ahead know them without running anything --, `decide` (pure: what must change, from
what was read) and `apply`, composed by `run(args, ctx) -> Outcome`.
In a dry run `ctx.transport` refuses mutating commands, so a kind cannot mutate by mistake.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, Literal

from netops.engine.result import Status
from netops.transport.base import Command, Completed, Transport


@dataclass(frozen=True, slots=True)
class StepContext:
    """Everything a step kind may use; built by the engine for one step on one host."""

    transport: Transport
    dry_run: bool
    timeout: float | None
    become: bool
    secrets: frozenset[str] = frozenset()
    prior_change: bool = False
    """An earlier step on this host changed (or, in a dry run, would change) something, so a
    prediction that reads state may be stale (pyinfra#421)."""
    sleep: Callable[[float], None] = field(default=lambda s: None)
    clock: Callable[[], float] = field(default=lambda: 0.0)
    predicted: dict[str, str | None] = field(default_factory=dict)
    """In a dry run, what earlier steps on this host would have made of the node (a file's
    path -> its predicted content, None for removed; `sysctl:KEY` -> the runtime value), so
    that a later step predicts from there instead of from the untouched node. One dict per
    host, shared by its steps."""

    mutates: bool = False
    """The step changes the node (a shell step's `mutates: false` makes its command a read)."""
    gate: bool = False
    """The step is part of the health gate (`verify:`): a failed expectation fails the host."""

    def command(self, text: str, *, readonly: bool) -> Command:
        return Command(text, secrets=self.secrets, become=self.become, readonly=readonly)

    def read(self, text: str, *, timeout: float | None = None) -> Completed:
        """Run a read-only command (allowed in a dry run)."""
        return self.transport.run(self.command(text, readonly=True),
                                  timeout=timeout or self.timeout)

    def write(self, text: str, *, stdin: bytes | None = None) -> Completed:
        """Run a mutating command (refused in a dry run)."""
        return self.transport.run(self.command(text, readonly=False), timeout=self.timeout,
                                  stdin=stdin)

    def send(self, commands: list[Command]) -> list[Completed]:
        """Run a kind's declared reads (`reads(args, ctx)`), in order."""
        return [self.transport.run(cmd, timeout=self.timeout) for cmd in commands]


Template = Literal["shell", "text"]


def arg(help: str, *, default: Any = MISSING, key: str | None = None,
        template: Template | None = None, text: bool = False) -> Any:
    """A field of a kind's `Args`: `help` for people and the schema; `key` the YAML key when it
    differs from the attribute (`within` -> `timeout_s`); `template` how the engine renders it
    ("shell": values shell-quoted, for commands; "text": as written, for paths and values);
    `text` accepts a number too (read as its text). The format type follows the annotation:
    str, bool, int, float (a duration), tuple[str, ...] (a list), Literal[...] (a choice), Expect.
    """
    meta = {"help": help, "key": key, "template": template, "text": text}
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a kind reports; the engine adds identity and timing to make a StepResult."""

    status: Status
    command: str | None = None
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    note: str = ""
    diff: str = ""
    finding: bool = False
    """For checks: the expectation did not hold (registered as `.failed`)."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Parsed values a later `when:` may read (`result.fields.x`)."""
    truncated: bool = False
    """The command's output was cut in the middle (`Completed.truncated`)."""

    @property
    def changed(self) -> bool:
        return self.status in (Status.CHANGED, Status.WOULD_CHANGE)


def from_completed(done: Completed, cmd: Command, status: Status, note: str = "") -> Outcome:
    return Outcome(status, command=cmd.display, rc=done.rc, stdout=done.stdout,
                   stderr=done.stderr, note=note, truncated=bool(done.truncated))


@dataclass(frozen=True, slots=True)
class Expect:
    """What a check expects of its command (every given field must hold)."""

    rc: int | None = 0
    stdout: str | None = None
    """Exact stdout, compared with surrounding whitespace stripped."""
    stdout_regex: str | None = None
    stdout_contains: str | None = None

    def mismatch(self, done: Completed) -> str:
        """Empty when the expectation holds, else what did not."""
        out = done.stdout.strip()
        if self.rc is not None and done.rc != self.rc:
            detail = _first(done.stderr) or _first(done.stdout)
            return f"rc {done.rc}, expected {self.rc}" + (f": {detail}" if detail else "")
        if self.stdout is not None and out != self.stdout.strip():
            return f"stdout {_short(out)!r}, expected {self.stdout.strip()!r}"
        if self.stdout_regex is not None:
            try:
                found = re.search(self.stdout_regex, done.stdout, re.MULTILINE)
            except re.error as e:  # a templated regex that rendered into a bad one
                return f"bad stdout_regex /{self.stdout_regex}/: {e}"
            if not found:
                return f"stdout {_short(out)!r} does not match /{self.stdout_regex}/"
        if self.stdout_contains is not None and self.stdout_contains not in done.stdout:
            return f"stdout does not contain {self.stdout_contains!r}"
        return ""


def _first(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def may_change(ctx: StepContext, note: str) -> str:
    """Qualify a dry-run prediction that an earlier predicted change could invalidate."""
    if ctx.dry_run and ctx.prior_change:
        return note + " (may differ: an earlier step would change this host first)"
    return note
