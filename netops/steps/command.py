"""Command-based kinds: `check` (read-only), `shell`/`kubectl`/`local` (guarded), `wait`.

What a node printed is judged as it is (an expectation sees the real output), then every secret
is masked in what the kind reports (`stdout`, `stderr`, the note quoting them): from here on,
the live view, `--json`, the journal and registered results never hold a secret value.
"""

from __future__ import annotations

from dataclasses import replace

from netops.engine.result import Status
from netops.steps.base import (
    Expect,
    Outcome,
    StepContext,
    from_completed,
    may_change,
)
from netops.transport.base import Completed, mask, unexpected_rc

HIDDEN = "the output held a secret (masked)"
"""The note of an expectation that failed on output which, masked, would have passed."""


def _shown(ctx: StepContext, done: Completed) -> Completed:
    """`done` as it may be shown: secrets masked in its output."""
    if not ctx.secrets:
        return done
    return replace(done, stdout=mask(done.stdout, ctx.secrets),
                   stderr=mask(done.stderr, ctx.secrets))


def _mismatch(ctx: StepContext, expect: Expect, done: Completed, shown: Completed) -> str:
    """Why `done` failed `expect`, told from the masked output (a note may quote the output,
    cut short: cut after masking, never through a secret); empty when it held."""
    if not expect.mismatch(done):
        return ""
    return mask(expect.mismatch(shown), ctx.secrets) or HIDDEN


def _broken(ctx: StepContext, done: Completed, shown: Completed, expected: int | None,
            what: str = "") -> str:
    """The note of an error when `done`'s exit code says the command did not run as written
    (127, 126, a signal; see `unexpected_rc`), with the first line it printed; else empty."""
    why = unexpected_rc(done.rc, expected)
    if not why:
        return ""
    detail = next((ln.strip() for ln in (shown.stderr + "\n" + shown.stdout).splitlines()
                   if ln.strip()), "")
    return mask(f"{what}{why}" + (f": {detail[:200]}" if detail else ""), ctx.secrets)


def check(ctx: StepContext, *, command: str, expect: Expect, fail: bool) -> Outcome:
    """Run a read-only command; a failed expectation is a finding, or a failure with `fail`.
    An exit code that says the command did not run (127, 126, a signal) is an error."""
    cmd = ctx.command(command, readonly=True)
    done = ctx.transport.run(cmd, timeout=ctx.timeout)
    shown = _shown(ctx, done)
    broken = _broken(ctx, done, shown, expect.rc)
    if broken:
        return from_completed(shown, cmd, Status.FAILED, note=broken)
    why = _mismatch(ctx, expect, done, shown)
    status = Status.FAILED if (why and fail) else Status.OK
    outcome = from_completed(shown, cmd, status, note=why)
    return Outcome(outcome.status, outcome.command, outcome.rc, outcome.stdout, outcome.stderr,
                   outcome.note, finding=bool(why))


def shell(ctx: StepContext, *, command: str, unless: str | None, creates: str | None,
          mutates: bool = True) -> Outcome:
    """Run a command unless its read-only guard says the host is already converged."""
    if not mutates:
        cmd = ctx.command(command, readonly=True)
        done = ctx.transport.run(cmd, timeout=ctx.timeout)
        shown = _shown(ctx, done)
        return from_completed(shown, cmd, Status.OK if done.ok else Status.FAILED,
                              note=_broken(ctx, done, shown, 0))
    cmd = ctx.command(command, readonly=False)
    try:
        converged = _guard(ctx, unless, creates)
    except _GuardBroken as e:
        return Outcome(Status.FAILED, command=cmd.display, rc=e.done.rc,
                       stdout=e.done.stdout, stderr=e.done.stderr, note=e.note)
    if converged:
        return Outcome(Status.OK, command=cmd.display, note=converged)
    if ctx.dry_run:
        why = "guard says a change is needed" if (unless or creates) else "no guard: always runs"
        return Outcome(Status.WOULD_CHANGE, command=cmd.display, note=may_change(ctx, why))
    done = ctx.transport.run(cmd, timeout=ctx.timeout)
    shown = _shown(ctx, done)
    return from_completed(shown, cmd, Status.CHANGED if done.ok else Status.FAILED,
                          note=_broken(ctx, done, shown, 0))


class _GuardBroken(Exception):
    """The `unless` guard could not run (127, 126, a signal): it proves nothing either way."""

    def __init__(self, done: Completed, note: str) -> None:
        super().__init__(note)
        self.done, self.note = done, note


def _guard(ctx: StepContext, unless: str | None, creates: str | None) -> str:
    if creates is not None:
        import shlex

        if ctx.read(f"test -e {shlex.quote(creates)}").ok:
            return f"{creates} exists"
    if unless is not None:
        done = ctx.read(unless)
        if done.ok:
            return "guard `unless` passed: already converged"
        shown = _shown(ctx, done)
        broken = _broken(ctx, done, shown, 0, "guard `unless`: ")
        if broken:
            raise _GuardBroken(shown, broken)
    return ""


def wait(ctx: StepContext, *, command: str, expect: Expect, timeout: float,
         interval: float) -> Outcome:
    """Poll a read-only check until its expectation holds or `timeout` passes."""
    cmd = ctx.command(command, readonly=True)
    deadline = ctx.clock() + timeout
    attempts = 0
    while True:
        attempts += 1
        done = ctx.transport.run(cmd, timeout=ctx.timeout)
        shown = _shown(ctx, done)
        broken = _broken(ctx, done, shown, expect.rc)
        if broken:  # no use waiting for a command that cannot run
            return from_completed(shown, cmd, Status.FAILED, note=broken)
        why = _mismatch(ctx, expect, done, shown)
        done = shown
        if not why:
            return from_completed(done, cmd, Status.OK, note=f"passed after {attempts} try(s)")
        if ctx.dry_run:
            return from_completed(done, cmd, Status.WOULD_CHANGE,
                                  note=f"would wait up to {timeout:g}s: now {why}")
        if ctx.clock() + interval > deadline:
            return from_completed(done, cmd, Status.FAILED,
                                  note=f"still {why} after {timeout:g}s ({attempts} tries)")
        ctx.sleep(interval)
