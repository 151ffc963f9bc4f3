"""`kubectl`: kubectl arguments, run on the controller with the operator's kubeconfig, behind
an optional read-only `unless` guard: a `local` step whose command starts with `kubectl `."""

from __future__ import annotations

from dataclasses import replace

from netops.steps import local
from netops.steps.base import Outcome, StepContext
from netops.steps.local import (  # noqa: F401  (the kind's interface, shared with local)
    MAIN,
    MUTATES_OVERRIDABLE,
    ON,
    Args,
    converges,
)
from netops.transport.base import Command

HELP = "kubectl arguments, run on the controller with the operator's kubeconfig"


def _as_local(args: Args) -> Args:
    return replace(args, command="kubectl " + args.command)


def reads(args: Args, ctx: StepContext) -> list[Command]:
    return local.reads(_as_local(args), ctx)


def run(args: Args, ctx: StepContext) -> Outcome:
    return local.run(_as_local(args), ctx)
