"""`systemd`: a unit's active state, enablement and masking, compared before acting.

One read (`probe_script`), a pure decision (`plan`: the systemctl commands), an `apply`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

from netops.engine.result import Status
from netops.steps.base import Outcome, StepContext, arg, may_change
from netops.transport.base import Command, Completed

HELP = "unit state: started, stopped, restarted, reloaded; enabled; masked"
MAIN: str | None = "unit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Args:
    unit: str = arg("unit name", template="text")
    state: Literal["started", "stopped", "restarted", "reloaded"] | None = arg(
        "desired active state", default=None)
    enabled: bool | None = arg("enabled at boot", default=None)
    masked: bool | None = arg("masked (never starts)", default=None)
    daemon_reload: bool = arg("run daemon-reload first", default=False)


def problem(args: Args) -> tuple[str, str] | None:
    if not (args.state or args.enabled is not None or args.masked is not None):
        return "", "systemd needs state, enabled or masked"
    return None


def converges(args: Args) -> bool:
    """A restart or reload is a change every time; the rest compares before acting."""
    return args.state not in ("restarted", "reloaded")


def reads(args: Args, ctx: StepContext) -> list[Command]:
    return [ctx.command(probe_script(args.unit), readonly=True)]


@dataclass(frozen=True, slots=True)
class UnitState:
    active: str
    """`systemctl is-active` word: active, inactive, failed, activating, ..."""
    enabled: str
    """`systemctl is-enabled` word, or "" for an unknown unit."""


def probe_script(unit: str) -> str:
    u = shlex.quote(unit)
    return (f"echo \"active=$(systemctl is-active {u} 2>/dev/null)\"; "
            f"echo \"enabled=$(systemctl is-enabled {u} 2>/dev/null)\"")


def parse(out: str) -> UnitState:
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return UnitState(values.get("active", "").strip(), values.get("enabled", "").strip())


def plan(unit: str, now: UnitState, *, state: str | None, enabled: bool | None,
         masked: bool | None, daemon_reload: bool) -> tuple[list[str], list[str]]:
    """(systemctl commands, human notes) that take `now` to the desired state; pure."""
    u = shlex.quote(unit)
    cmds: list[str] = ["systemctl daemon-reload"] if daemon_reload else []
    notes: list[str] = []
    is_masked = now.enabled in ("masked", "masked-runtime")
    if masked is True and not is_masked:
        cmds.append(f"systemctl mask {u}")
        notes.append(f"{now.enabled or 'unknown'} -> masked")
    if masked is False and is_masked:
        cmds.append(f"systemctl unmask {u}")
        notes.append("masked -> unmasked")
    is_enabled = now.enabled in ("enabled", "enabled-runtime", "static", "alias", "indirect")
    if enabled is True and not is_enabled:
        cmds.append(f"systemctl enable {u}")
        notes.append(f"{now.enabled or 'unknown'} -> enabled")
    if enabled is False and now.enabled in ("enabled", "enabled-runtime"):
        cmds.append(f"systemctl disable {u}")
        notes.append("enabled -> disabled")
    active = now.active == "active"
    if state == "started" and not active:
        cmds.append(f"systemctl start {u}")
        notes.append(f"{now.active or 'unknown'} -> active")
    elif state == "stopped" and now.active not in ("inactive", "failed", ""):
        cmds.append(f"systemctl stop {u}")
        notes.append(f"{now.active} -> inactive")
    elif state in ("restarted", "reloaded"):
        verb = "restart" if state == "restarted" else "reload"
        cmds.append(f"systemctl {verb} {u}")
        notes.append(f"{now.active or 'unknown'} -> {verb}")
    return cmds, notes


@dataclass(frozen=True, slots=True)
class Change:
    """The systemctl commands (joined by &&) and what they change, for `apply`."""

    text: str
    summary: str


def decide(args: Args, ctx: StepContext, observed: list[Completed]) -> Outcome | Change:
    now = parse(observed[0].stdout)
    cmds, notes = plan(args.unit, now, state=args.state, enabled=args.enabled,
                       masked=args.masked, daemon_reload=args.daemon_reload)
    if not notes:
        return Outcome(Status.OK, note=f"{args.unit}: {now.active}, {now.enabled or 'unknown'}")
    return Change(" && ".join(cmds), f"{args.unit}: " + ", ".join(notes))


def apply(args: Args, ctx: StepContext, decision: Outcome | Change) -> Outcome:
    if isinstance(decision, Outcome):
        return decision
    text, summary = decision.text, decision.summary
    if ctx.dry_run:
        return Outcome(Status.WOULD_CHANGE, command=text, note=may_change(ctx, summary))
    done = ctx.write(text)
    return Outcome(Status.CHANGED if done.ok else Status.FAILED, command=text, rc=done.rc,
                   stdout=done.stdout, stderr=done.stderr, note=summary)


def run(args: Args, ctx: StepContext) -> Outcome:
    return apply(args, ctx, decide(args, ctx, ctx.send(reads(args, ctx))))
