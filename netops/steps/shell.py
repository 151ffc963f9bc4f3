"""`shell`: a mutating command, idempotent through its read-only `unless`/`creates` guard
(`mutates: false` makes it a read that runs in dry runs too).

Its decision cannot be made from one declared read: a second guard (`unless` after `creates`)
is sent only when the first did not settle it, so `reads` declares the first and `run` (in
`_command`) reads, decides (`created`, `converged`) and applies (`apply_guarded`) in turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from netops.steps import _command
from netops.steps._command import command_arg, unless_arg
from netops.steps.base import Outcome, StepContext, arg
from netops.transport.base import Command

HELP = "mutating command, idempotent through its `unless`/`creates` guard"
MAIN: str | None = "command"
MUTATES_OVERRIDABLE = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Args:
    command: str = command_arg()
    unless: str | None = unless_arg()
    creates: str | None = arg("skip when this path exists", default=None, template="text")


def converges(args: Args) -> bool:
    """Run again, a guarded command re-checks its guard instead of repeating its change."""
    return bool(args.unless or args.creates)


def reads(args: Args, ctx: StepContext) -> list[Command]:
    return _command.guard_reads(ctx, args.command, args.unless, args.creates)


def run(args: Args, ctx: StepContext) -> Outcome:
    return _command.run_guarded(ctx, args.command, args.unless, args.creates)
