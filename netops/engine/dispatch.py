"""Map a runbook step onto its kind's module (`netops.steps.registry`), rendering the
templates of its arguments on the way, as their `arg(template=...)` metadata says.

A kind's module is imported when a step of that kind is first loaded or run: a run loads only
the kinds its runbook uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from netops.steps.base import Expect, Outcome, StepContext
from netops.steps.registry import kind

if TYPE_CHECKING:
    from netops.runbook.model import Step
    from netops.transport.base import Command

Render = Callable[[str], str]


def rendered(args: Any, shell: Render, text: Render) -> Any:
    """`args` (a kind's `Args`) with every template field rendered: "shell" fields by `shell`
    (values shell-quoted), "text" fields by `text` (an expectation's strings, each line of a
    list); the others as written. The same object when rendering changed nothing."""
    changes: dict[str, Any] = {}
    for name, how in _templated(type(args)):
        value = getattr(args, name)
        if value is None:
            continue
        render = shell if how == "shell" else text
        if isinstance(value, Expect):
            new: Any = expect_of(value, render)
        elif isinstance(value, tuple):
            new = tuple(render(x) for x in value)
        else:
            new = render(value)
        if new != value:
            changes[name] = new
    return replace(args, **changes) if changes else args


_TEMPLATED: dict[type, tuple[tuple[str, str], ...]] = {}


def _templated(args: type) -> tuple[tuple[str, str], ...]:
    """(attribute, "shell" or "text") of each template field of an `Args` class."""
    found = _TEMPLATED.get(args)
    if found is None:
        found = _TEMPLATED[args] = tuple((f.name, f.metadata["template"]) for f in fields(args)
                                         if f.metadata.get("template"))
    return found


def expect_of(raw: Expect, text: Render) -> Expect:
    """An expectation, its strings rendered with `text` (templates, like every string that
    reaches a node or a comparison)."""

    def value(found: str | None) -> str | None:
        return None if found is None else text(found)

    return Expect(rc=raw.rc, stdout=value(raw.stdout), stdout_regex=value(raw.stdout_regex),
                  stdout_contains=value(raw.stdout_contains))


def step_context(step: Step, ctx: StepContext, gate: bool) -> StepContext:
    """`ctx` told what the step says of itself (it mutates; it is in the health gate)."""
    if ctx.mutates == step.mutates and ctx.gate == gate:
        return ctx
    return replace(ctx, mutates=step.mutates, gate=gate)


def run_kind(step: Step, ctx: StepContext, shell: Render, text: Render, *,
             gate: bool = False) -> Outcome:
    """Run `step` with `ctx`; `shell` renders command templates (values shell-quoted),
    `text` renders plain strings (paths, file content, values)."""
    return kind(step.kind).run(rendered(step.args, shell, text), step_context(step, ctx, gate))


def reads_of(step: Step, ctx: StepContext, shell: Render, text: Render, *,
             gate: bool = False) -> list[Command]:
    """The read-only commands `step` will send first, as `run_kind` would send them."""
    return kind(step.kind).reads(rendered(step.args, shell, text),
                                 step_context(step, ctx, gate))


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
