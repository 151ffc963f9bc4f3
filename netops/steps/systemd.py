"""`systemd`: a unit's active state, enablement and masking, compared before acting."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from netops.engine.result import Status
from netops.steps.base import Outcome, StepContext, may_change


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


def run(ctx: StepContext, *, unit: str, state: str | None, enabled: bool | None,
        masked: bool | None, daemon_reload: bool) -> Outcome:
    now = parse(ctx.read(probe_script(unit)).stdout)
    cmds, notes = plan(unit, now, state=state, enabled=enabled, masked=masked,
                       daemon_reload=daemon_reload)
    if not notes:
        return Outcome(Status.OK, note=f"{unit}: {now.active}, {now.enabled or 'unknown'}")
    summary = f"{unit}: " + ", ".join(notes)
    text = " && ".join(cmds)
    if ctx.dry_run:
        return Outcome(Status.WOULD_CHANGE, command=text, note=may_change(ctx, summary))
    done = ctx.write(text)
    return Outcome(Status.CHANGED if done.ok else Status.FAILED, command=text, rc=done.rc,
                   stdout=done.stdout, stderr=done.stderr, note=summary)
