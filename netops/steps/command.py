"""Command-based kinds: `check` (read-only), `shell`/`kubectl`/`local` (guarded), `wait`."""

from __future__ import annotations

from netops.engine.result import Status
from netops.steps.base import Expect, Outcome, StepContext, from_completed, may_change


def check(ctx: StepContext, *, command: str, expect: Expect, fail: bool) -> Outcome:
    """Run a read-only command; a failed expectation is a finding, or a failure with `fail`."""
    cmd = ctx.command(command, readonly=True)
    done = ctx.transport.run(cmd, timeout=ctx.timeout)
    why = expect.mismatch(done)
    status = Status.FAILED if (why and fail) else Status.OK
    outcome = from_completed(done, cmd, status, note=why)
    return Outcome(outcome.status, outcome.command, outcome.rc, outcome.stdout, outcome.stderr,
                   outcome.note, finding=bool(why))


def shell(ctx: StepContext, *, command: str, unless: str | None, creates: str | None,
          mutates: bool = True) -> Outcome:
    """Run a command unless its read-only guard says the host is already converged."""
    if not mutates:
        cmd = ctx.command(command, readonly=True)
        done = ctx.transport.run(cmd, timeout=ctx.timeout)
        return from_completed(done, cmd, Status.OK if done.ok else Status.FAILED)
    converged = _guard(ctx, unless, creates)
    cmd = ctx.command(command, readonly=False)
    if converged:
        return Outcome(Status.OK, command=cmd.display, note=converged)
    if ctx.dry_run:
        why = "guard says a change is needed" if (unless or creates) else "no guard: always runs"
        return Outcome(Status.WOULD_CHANGE, command=cmd.display, note=may_change(ctx, why))
    done = ctx.transport.run(cmd, timeout=ctx.timeout)
    return from_completed(done, cmd, Status.CHANGED if done.ok else Status.FAILED)


def _guard(ctx: StepContext, unless: str | None, creates: str | None) -> str:
    if creates is not None:
        import shlex

        if ctx.read(f"test -e {shlex.quote(creates)}").ok:
            return f"{creates} exists"
    if unless is not None:
        done = ctx.read(unless)
        if done.ok:
            return "guard `unless` passed: already converged"
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
        why = expect.mismatch(done)
        if not why:
            return from_completed(done, cmd, Status.OK, note=f"passed after {attempts} try(s)")
        if ctx.dry_run:
            return from_completed(done, cmd, Status.WOULD_CHANGE,
                                  note=f"would wait up to {timeout:g}s: now {why}")
        if ctx.clock() + interval > deadline:
            return from_completed(done, cmd, Status.FAILED,
                                  note=f"still {why} after {timeout:g}s ({attempts} tries)")
        ctx.sleep(interval)
