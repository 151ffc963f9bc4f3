"""INI inventories, parsed line by line as Ansible's ini inventory plugin parses them.

Errors point at file:line:col and quote the line. Values go through `ast.literal_eval` as in
Ansible, so `2222` is a number and `yes` a string.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netops.errors import LoadError, SourceSpan
from netops.inventory.parse_common import (
    SECTIONS,
    GraphError,
    expand_hosts,
    json_key,
    plain_value,
    quote_line,
)
from netops.inventory.patterns import RangeError

if TYPE_CHECKING:
    from netops.inventory.load import InventoryBuilder

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")


@dataclass
class _Pending:
    """A group used before its own [section]: Ansible allows it if the section comes later."""

    state: str
    span: SourceSpan
    parents: list[str] = field(default_factory=list)


class IniInventory:
    """The ini inventory plugin, line by line; lines before any section are "ungrouped"."""

    def __init__(self, build: InventoryBuilder, path: Path, text: str) -> None:
        self.build, self.path, self.lines = build, path, text.splitlines()
        self.pending: dict[str, _Pending] = {}

    def parse(self) -> None:
        group, state = "ungrouped", "hosts"
        for number, raw in enumerate(self.lines, 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            span = SourceSpan(self.path, number, raw.index(line[0]) + 1)
            try:
                group, state = self.line(line, group, state, span)
            except GraphError as e:
                raise self.error(span, e.message, e.hint) from None
        self._check_pending()

    def line(self, line: str, group: str, state: str, span: SourceSpan) -> tuple[str, str]:
        """Handle one significant line; returns the (group, state) that holds after it."""
        section = _SECTION.match(line)
        if section:
            group, state = section.group(1), section.group(2) or "hosts"
            self.section(group, state, span)
        elif line.startswith("[") and line.endswith("]"):
            raise self.error(span, f"invalid section {line}", "a section is [group], "
                             "[group:vars] or [group:children], without spaces")
        elif state == "hosts":
            self.host_line(group, line, span)
        elif state == "vars":
            key, eq, value = line.partition("=")
            if not eq:
                raise self.error(span, f"expected key=value in [{group}:vars], got {line!r}")
            self.build.set_group_var(group, key.strip(), _ini_value(value.strip()))
        else:
            self.child_line(group, line, span)
        return group, state

    def _check_pending(self) -> None:
        for name, pending in self.pending.items():
            if pending.state == "vars":
                raise self.error(pending.span, f"[{name}:vars] is for a group that is never "
                                 "defined", f"add a [{name}] section (it may be empty)")
            raise self.error(pending.span, f"[{pending.parents[-1]}:children] names group "
                             f"{name!r}, which is never defined", f"add a [{name}] section")

    def error(self, span: SourceSpan, message: str, hint: str = "") -> LoadError:
        return LoadError(message + quote_line(self.lines, span.line), span, hint)

    def section(self, group: str, state: str, span: SourceSpan) -> None:
        if state not in SECTIONS:
            raise self.error(span, f"section [{group}:{state}] has unknown type {state!r}",
                             "use [group], [group:vars] or [group:children]")
        if group not in self.build.groups:
            if state == "vars" and group not in self.pending:
                self.pending[group] = _Pending("vars", span)
            self.build.group(group)
        if group in self.pending and state != "vars":
            if self.pending[group].state == "children":
                self._adopt(group)
            else:
                del self.pending[group]

    def _adopt(self, group: str) -> None:
        for parent in self.pending[group].parents:
            self.build.add_child(parent, group)
            if parent in self.pending and self.pending[parent].state == "children":
                self._adopt(parent)
        del self.pending[group]

    def host_line(self, group: str, line: str, span: SourceSpan) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as e:
            raise self.error(span, f"cannot split host line: {e}", "check the quotes") from None
        if not tokens:
            return
        try:
            names, port = expand_hosts(tokens[0])
        except RangeError as e:
            raise self.error(span, f"host {tokens[0]!r}: {e}") from None
        if tokens[0].endswith(":") and port is None:
            raise self.error(span, f"host {tokens[0]!r} ends with ':'",
                             "a ':' after a host name must be followed by a port")
        if tokens[0] == "---":
            raise self.error(span, "'---' is not a host name", "is this a YAML file? name it "
                             "*.yaml so it is read as YAML")
        variables = {}
        for token in tokens[1:]:
            key, eq, value = token.partition("=")
            if not eq:
                raise self.error(span, f"expected key=value after the host name, got {token!r}")
            variables[key] = _ini_value(value)
        for name in names:
            self.build.add_host(name, group, port).update(variables)

    def child_line(self, group: str, line: str, span: SourceSpan) -> None:
        m = _GROUP_NAME.match(line)
        if not m:
            raise self.error(span, f"expected a group name in [{group}:children], got {line!r}")
        child = m.group(1)
        if child in self.build.groups:
            self.build.add_child(group, child)
        else:
            self.pending.setdefault(child, _Pending("children", span)).parents.append(group)


def _ini_value(text: str) -> Any:
    """INI values go through ast.literal_eval, as in Ansible: 2222 is a number, yes a string."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except Exception:  # literal_eval raises several types; Ansible keeps the text then
        return text
    return _ini_coerce(value)


def _ini_coerce(value: Any) -> Any:
    if isinstance(value, list | tuple | set):
        return [_ini_coerce(v) for v in value]
    if isinstance(value, dict):
        return {json_key(k): _ini_coerce(v) for k, v in value.items()}
    if value is ... or isinstance(value, complex):
        return "..." if value is ... else str(value)
    return plain_value(value)
