"""`check`: a read-only command and what its output must be; runs in dry runs too.

A failed expectation is a finding (`ID.failed`), or a failure with `fail: true` or in the
health gate. An exit code that says the command did not run (127, 126, a signal) is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netops.engine.result import Status
from netops.steps._command import broken, command_arg, expect_arg, mismatch, shown
from netops.steps.base import Expect, Outcome, StepContext, arg, from_completed
from netops.transport.base import Command, Completed

HELP = ("read-only command; runs in dry runs too; a failed `expect` is a finding "
        "(`ID.failed`), or a failure with `fail: true`")
MAIN: str | None = "command"
MUTATES = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Args:
    command: str = command_arg()
    expect: Expect = expect_arg()  # noqa: RUF009 (a dataclasses.field, like `arg`)
    fail: bool = arg("fail the host when expect does not hold", default=False)


def converges(args: Args) -> bool:
    return True  # it changes nothing


def reads(args: Args, ctx: StepContext) -> list[Command]:
    return [ctx.command(args.command, readonly=True)]


def decide(args: Args, ctx: StepContext, observed: list[Completed]) -> Outcome:
    cmd, done = reads(args, ctx)[0], observed[0]
    seen = shown(ctx, done)
    why = broken(ctx, done, seen, args.expect.rc)
    if why:
        return from_completed(seen, cmd, Status.FAILED, note=why)
    why = mismatch(ctx, args.expect, done, seen)
    status = Status.FAILED if (why and (args.fail or ctx.gate)) else Status.OK
    return replace(from_completed(seen, cmd, status, note=why), finding=bool(why))


def apply(args: Args, ctx: StepContext, decision: Outcome) -> Outcome:
    return decision  # a check changes nothing: its decision is its outcome


def run(args: Args, ctx: StepContext) -> Outcome:
    return apply(args, ctx, decide(args, ctx, ctx.send(reads(args, ctx))))
