"""`kubectl`: kubectl arguments, run on the controller with the operator's kubeconfig, behind
an optional read-only `unless` guard (as `shell`)."""

from __future__ import annotations

from dataclasses import dataclass

from netops.steps import _command
from netops.steps._command import command_arg, unless_arg
from netops.steps.base import Outcome, StepContext
from netops.transport.base import Command

HELP = "kubectl arguments, run on the controller with the operator's kubeconfig"
MAIN: str | None = "command"
MUTATES = True
MUTATES_OVERRIDABLE = True
ON = "controller"
ENDS_READ_AHEAD = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Args:
    command: str = command_arg()
    unless: str | None = unless_arg()


def problem(args: Args) -> tuple[str, str] | None:
    return None


def converges(args: Args) -> bool:
    return bool(args.unless)


def reads(args: Args, ctx: StepContext) -> list[Command]:
    return _command.guard_reads(ctx, "kubectl " + args.command, args.unless, None)


def run(args: Args, ctx: StepContext) -> Outcome:
    return _command.run_guarded(ctx, "kubectl " + args.command, args.unless, None)
