"""`local`: a command run on the controller (per host, or once), behind
an optional read-only `unless` guard (as `shell`)."""

from __future__ import annotations

from dataclasses import dataclass

from netops.steps import _command
from netops.steps._command import command_arg, unless_arg
from netops.steps.base import Outcome, StepContext
from netops.transport.base import Command

HELP = "command run on the controller"
MAIN: str | None = "command"
MUTATES_OVERRIDABLE = True
ON = "controller"


@dataclass(frozen=True, slots=True, kw_only=True)
class Args:
    command: str = command_arg()
    unless: str | None = unless_arg()


def converges(args: Args) -> bool:
    return bool(args.unless)


def reads(args: Args, ctx: StepContext) -> list[Command]:
    return _command.guard_reads(ctx, args.command, args.unless, None)


def run(args: Args, ctx: StepContext) -> Outcome:
    return _command.run_guarded(ctx, args.command, args.unless, None)
