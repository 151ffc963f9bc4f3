"""`wait`: poll a read-only check until its expectation holds, or fail after `within`.

A loop cannot be decided from one read: `reads` declares the first try, `decide` judges each
try (pure), and `run` keeps the loop. Nothing after a wait is read ahead (the node is expected
to move meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass

from netops.engine.result import Status
from netops.steps._command import broken, expect_arg, mismatch, shown
from netops.steps.base import Expect, Outcome, StepContext, arg, from_completed
from netops.transport.base import Command, Completed

HELP = "retry a read-only check until its expect holds, or fail after `within`"
MAIN: str | None = "check"
MUTATES = False
ENDS_READ_AHEAD = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Args:
    check: str = arg("the read-only command", template="shell")
    expect: Expect = expect_arg()  # noqa: RUF009 (a dataclasses.field, like `arg`)
    timeout_s: float = arg("give up after", default=300.0, key="within")
    interval_s: float = arg("pause between tries", default=5.0, key="every")


def converges(args: Args) -> bool:
    return True  # it changes nothing


def reads(args: Args, ctx: StepContext) -> list[Command]:
    return [ctx.command(args.check, readonly=True)]


def decide(args: Args, ctx: StepContext, observed: list[Completed],
           attempts: int) -> Outcome | None:
    """The outcome of try number `attempts`, or None: try again (if time is left)."""
    cmd, done = reads(args, ctx)[0], observed[0]
    seen = shown(ctx, done)
    why = broken(ctx, done, seen, args.expect.rc)
    if why:  # no use waiting for a command that cannot run
        return from_completed(seen, cmd, Status.FAILED, note=why)
    why = mismatch(ctx, args.expect, done, seen)
    if not why:
        return from_completed(seen, cmd, Status.OK, note=f"passed after {attempts} try(s)")
    if ctx.dry_run:
        return from_completed(seen, cmd, Status.WOULD_CHANGE,
                              note=f"would wait up to {args.timeout_s:g}s: now {why}")
    return None


def run(args: Args, ctx: StepContext) -> Outcome:
    cmd = reads(args, ctx)
    deadline = ctx.clock() + args.timeout_s
    attempts = 0
    while True:
        attempts += 1
        observed = ctx.send(cmd)
        outcome = decide(args, ctx, observed, attempts)
        if outcome is not None:
            return outcome
        if ctx.clock() + args.interval_s > deadline:
            done = observed[0]
            why = mismatch(ctx, args.expect, done, shown(ctx, done))
            return from_completed(shown(ctx, done), cmd[0], Status.FAILED, note=f"still {why} "
                                  f"after {args.timeout_s:g}s ({attempts} tries)")
        ctx.sleep(args.interval_s)
