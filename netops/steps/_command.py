"""What the command kinds share (check, shell, kubectl, local, wait): their common arguments,
the judgement of a command's result, and the guarded run of shell/kubectl/local.

What a node printed is judged as it is (an expectation sees the real output), then every secret
is masked in what the kind reports (`stdout`, `stderr`, the note quoting them): from here on,
the live view, `--json`, the journal and registered results never hold a secret value.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Any

from netops.engine.result import Status
from netops.steps.base import Expect, Outcome, StepContext, arg, from_completed, may_change
from netops.transport.base import Command, Completed, mask, unexpected_rc

HIDDEN = "the output held a secret (masked)"
"""The note of an expectation that failed on output which, masked, would have passed."""


def command_arg() -> Any:
    return arg("the shell command (values are shell-quoted)", template="shell")


def unless_arg() -> Any:
    return arg("read-only guard: when it exits 0 the host is converged and the command does "
               "not run", default=None, template="shell")


def expect_arg() -> Any:
    return arg("what the output must be: rc (default 0), stdout (exact, stripped), "
               "stdout_regex, stdout_contains (the strings are templates)", default=Expect(),
               template="text")


def shown(ctx: StepContext, done: Completed) -> Completed:
    """`done` as it may be shown: secrets masked in its output."""
    if not ctx.secrets:
        return done
    return replace(done, stdout=mask(done.stdout, ctx.secrets),
                   stderr=mask(done.stderr, ctx.secrets))


def mismatch(ctx: StepContext, expect: Expect, done: Completed, seen: Completed) -> str:
    """Why `done` failed `expect`, told from the masked output `seen` (a note may quote the
    output, cut short: cut after masking, never through a secret); empty when it held."""
    if not expect.mismatch(done):
        return ""
    return mask(expect.mismatch(seen), ctx.secrets) or HIDDEN


def broken(ctx: StepContext, done: Completed, seen: Completed, expected: int | None,
           what: str = "") -> str:
    """The note of an error when `done`'s exit code says the command did not run as written
    (127, 126, a signal; see `unexpected_rc`), with the first line it printed; else empty."""
    why = unexpected_rc(done.rc, expected)
    if not why:
        return ""
    detail = next((ln.strip() for ln in (seen.stderr + "\n" + seen.stdout).splitlines()
                   if ln.strip()), "")
    return mask(f"{what}{why}" + (f": {detail[:200]}" if detail else ""), ctx.secrets)


# -- shell, kubectl, local: a command behind its read-only guard ----------------------------
def guard_reads(ctx: StepContext, command: str, unless: str | None,
                creates: str | None) -> list[Command]:
    """The first read of a guarded command: the command itself when the step does not
    mutate, else `creates`' test, else `unless` (the second guard is sent only when the first
    did not settle it, so it is not declared)."""
    if not ctx.mutates:
        return [ctx.command(command, readonly=True)]
    if creates is not None:
        return [ctx.command(_exists(creates), readonly=True)]
    return [] if unless is None else [ctx.command(unless, readonly=True)]


def run_guarded(ctx: StepContext, command: str, unless: str | None,
                creates: str | None) -> Outcome:
    """Run a command unless its read-only guard says the host is already converged."""
    if not ctx.mutates:
        read = ctx.command(command, readonly=True)
        return read_only(ctx, read, ctx.send([read])[0])
    cmd = ctx.command(command, readonly=False)
    settled = None
    if creates is not None:
        settled = created(cmd, creates, ctx.read(_exists(creates)))
    if settled is None and unless is not None:
        settled = converged(ctx, cmd, ctx.read(unless))
    if settled is not None:
        return settled
    return apply_guarded(ctx, cmd, guarded=unless is not None or creates is not None)


def _exists(path: str) -> str:
    return f"test -e {shlex.quote(path)}"


def read_only(ctx: StepContext, cmd: Command, done: Completed) -> Outcome:
    """The outcome of a command the step declared read-only (`mutates: false`)."""
    seen = shown(ctx, done)
    return from_completed(seen, cmd, Status.OK if done.ok else Status.FAILED,
                          note=broken(ctx, done, seen, 0))


def created(cmd: Command, creates: str, done: Completed) -> Outcome | None:
    """Converged when the `creates` path exists; None: the guard did not settle it."""
    return Outcome(Status.OK, command=cmd.display, note=f"{creates} exists") if done.ok \
        else None


def converged(ctx: StepContext, cmd: Command, done: Completed) -> Outcome | None:
    """What the `unless` guard's result settles: converged (it passed), a failure (it could not
    run: 127, 126, a signal; it proves nothing either way), or None (the command must run)."""
    if done.ok:
        return Outcome(Status.OK, command=cmd.display,
                       note="guard `unless` passed: already converged")
    seen = shown(ctx, done)
    why = broken(ctx, done, seen, 0, "guard `unless`: ")
    if not why:
        return None
    return Outcome(Status.FAILED, command=cmd.display, rc=seen.rc, stdout=seen.stdout,
                   stderr=seen.stderr, note=why)


def apply_guarded(ctx: StepContext, cmd: Command, *, guarded: bool) -> Outcome:
    if ctx.dry_run:
        why = "guard says a change is needed" if guarded else "no guard: always runs"
        return Outcome(Status.WOULD_CHANGE, command=cmd.display, note=may_change(ctx, why))
    done = ctx.transport.run(cmd, timeout=ctx.timeout)
    seen = shown(ctx, done)
    return from_completed(seen, cmd, Status.CHANGED if done.ok else Status.FAILED,
                          note=broken(ctx, done, seen, 0))
