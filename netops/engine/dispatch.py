"""Map a runbook step (model) onto its kind's function, rendering templates on the way.

A kind's module is imported when a step of that kind first runs: a run loads only the kinds
its runbook uses (the file, sysctl and systemd kinds cost a few ms of start-up each).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from netops.steps import command
from netops.steps.base import Expect, Outcome, StepContext

if TYPE_CHECKING:
    from netops.runbook.model import Step

Render = Callable[[str], str]


def expect_of(raw: Any, text: Render | None = None) -> Expect:
    """A step's `expect:`, its strings rendered with `text` (templates, like every string
    that reaches a node or a comparison)."""
    if raw is None:
        return Expect()
    render = text or (lambda s: s)

    def value(name: str) -> str | None:
        found = getattr(raw, name, None)
        return None if found is None else render(str(found))

    return Expect(rc=getattr(raw, "rc", 0), stdout=value("stdout"),
                  stdout_regex=value("stdout_regex"), stdout_contains=value("stdout_contains"))


def run_kind(step: Step, ctx: StepContext, shell: Render, text: Render, *,
             gate: bool = False) -> Outcome:
    """Run `step` with `ctx`; `shell` renders command templates (values shell-quoted),
    `text` renders plain strings (paths, file content, values)."""
    a = step.args
    opt = _optional(text)
    match step.kind:
        case "check":
            return command.check(ctx, command=shell(a.command), expect=expect_of(a.expect, text),
                                 fail=bool(a.fail) or gate)
        case "shell":
            return command.shell(ctx, command=shell(a.command), unless=_opt(shell, a.unless),
                                 creates=opt(a.creates), mutates=step.mutates)
        case "kubectl" | "local":
            prefix = "kubectl " if step.kind == "kubectl" else ""
            return command.shell(ctx, command=prefix + shell(a.command),
                                 unless=_opt(shell, getattr(a, "unless", None)),
                                 creates=None, mutates=step.mutates)
        case "wait":
            return command.wait(ctx, command=shell(a.check), expect=expect_of(a.expect, text),
                                timeout=a.timeout_s, interval=a.interval_s)
        case "sysctl":
            from netops.steps import sysctl

            return sysctl.run(ctx, key=text(a.key), value=text(str(a.value)),
                              persist=opt(a.persist),
                              comment_out_conflicts=a.comment_out_conflicts)
        case "file":
            from netops.steps import file

            lines = None if a.lines is None else [text(x) for x in a.lines]
            return file.run(ctx, path=text(a.path), content=opt(a.content), lines=lines,
                            mode=a.mode, backup=a.backup, state=a.state)
        case "systemd":
            from netops.steps import systemd

            return systemd.run(ctx, unit=text(a.unit), state=a.state, enabled=a.enabled,
                               masked=a.masked, daemon_reload=a.daemon_reload)
        case "reboot":
            from netops.steps import reboot

            return reboot.run(ctx, timeout=a.timeout_s)
    raise AssertionError(f"unknown step kind {step.kind!r} passed validation")


def _opt(render: Render, value: str | None) -> str | None:
    return None if value is None else render(value)


def _optional(render: Render) -> Callable[[str | None], str | None]:
    return lambda value: _opt(render, value)


def context_vars(params: Mapping[str, Any], host: Any, registered: Mapping[str, Any],
                 run_id: str, *, dry_run: bool = False) -> dict[str, Any]:
    """The template context of one step on one host (DESIGN: params, host, registered)."""
    ctx: dict[str, Any] = dict(params)
    ctx.update(registered)
    ctx["params"] = dict(params)
    ctx["host"] = host
    ctx["vars"] = dict(getattr(host, "vars", {}) or {})
    # run.dry_run lets a read-only step that only makes sense after a real change (waiting for a
    # restarted pod) say `when: ... and not run.dry_run`.
    ctx["run"] = {"id": run_id, "dry_run": dry_run}
    return ctx
