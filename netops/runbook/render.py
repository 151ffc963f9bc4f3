"""Jinja2 rendering of runbook templates: sandboxed, StrictUndefined, shell-quoted by default.

In a command every `{{ value }}` reaches the shell as one literal word (`shlex.quote`), so a
`--var` holding `; rm -rf /` or `$(...)` cannot run anything. `{{ value | raw }}` opts out for
values that are meant to be shell syntax (and is visible in review for that reason).

Jinja2 is imported on first use: a template without `{` is its own rendering, and a runbook of
plain commands (the benchmark's, say) then never pays the ~12 ms import.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from netops.errors import NetopsError
from netops.transport.base import mask

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

JINJA_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace"})
"""The names Jinja2 defines in every template (checked against Jinja2 by a unit test), known
without importing it."""


class RenderError(NetopsError):
    """A template failed for one host at run time (an undefined name, a bad filter...)."""


class TemplateSyntax(NetopsError):
    """A template that does not parse (found when a runbook is loaded)."""


class Raw(str):
    """A value the author marked `| raw`: inserted into a command without quoting."""


def _quote(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, list | tuple):
        return " ".join(shlex.quote(str(v)) for v in value)
    return shlex.quote(str(value))


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@cache
def environment(shell: bool) -> ImmutableSandboxedEnvironment:
    """The sandboxed environment for commands (`shell`: values shell-quoted) or for text."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
        finalize=_quote if shell else _plain,
    )
    env.filters["raw"] = lambda v: Raw(v)
    env.filters["quote"] = lambda v: Raw(shlex.quote(str(v)))
    return env


@lru_cache(maxsize=1024)
def _template(shell: bool, source: str) -> Any:
    return environment(shell).from_string(source)


@lru_cache(maxsize=512)
def _expression(source: str) -> Any:
    return environment(False).compile_expression(source, undefined_to_none=False)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered command; `display` has secrets masked for logs and the journal."""

    text: str
    display: str


def render_command(source: str, variables: Mapping[str, Any],
                   secrets: frozenset[str] = frozenset()) -> Rendered:
    """A command template rendered with every interpolated value shell-quoted."""
    text = _render(True, source, variables)
    return Rendered(text, mask(text, secrets))


def render_text(source: str, variables: Mapping[str, Any]) -> str:
    """A non-command template (a path, file content, a sysctl value): no quoting."""
    return _render(False, source, variables)


def _render(shell: bool, source: str, variables: Mapping[str, Any]) -> str:
    if "{" not in source:
        return source
    from jinja2 import TemplateError

    try:
        return str(_template(shell, source).render(variables))
    except TemplateError as e:
        raise RenderError(f"template {source!r}: {e}") from e


def evaluate_when(source: str, variables: Mapping[str, Any]) -> bool:
    """A `when:` expression's truth over params, `host` and registered results."""
    from jinja2 import TemplateError

    try:
        return bool(_expression(source)(**variables))
    except TemplateError as e:
        raise RenderError(f"when: {source!r}: {e}") from e


# -- load-time analysis ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reference:
    """A name a template reads, and the attribute read from it (`calico.failed`)."""

    name: str
    attr: str | None


def references(source: str, *, expression: bool = False) -> list[Reference]:
    """Free names a template (or a `when:` expression) reads; raises `TemplateSyntax`."""
    if not expression and "{" not in source:
        return []
    from jinja2 import TemplateSyntaxError, nodes

    try:
        tree = environment(False).parse("{{ (" + source + ") }}" if expression else source)
    except TemplateSyntaxError as e:
        raise TemplateSyntax(e.message or str(e)) from None
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    refs: dict[tuple[str, str | None], Reference] = {}
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name not in bound:
            refs[(node.node.name, node.attr)] = Reference(node.node.name, node.attr)
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in bound:
            refs.setdefault((name.name, None), Reference(name.name, None))
    return list(refs.values())
