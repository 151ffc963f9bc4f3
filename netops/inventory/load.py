"""Load an Ansible inventory (YAML or INI, plus group_vars/ and host_vars/) into an `Inventory`.

The result equals what ansible-core 2.19's `ansible-inventory --list` resolves; the contract
tests compare the two. Parsing mirrors Ansible's yaml and ini inventory plugins and
`InventoryData`, so group order, host order and "ungrouped" come out the same. Variables merge
in Ansible's default VARIABLE_PRECEDENCE, which has one surprise: group_vars/ *files* (even
group_vars/all) beat variables set on any group *inside the inventory file*:

    all (inventory) < groups (inventory) < group_vars/all < group_vars/<group> < host
    (inventory) < host_vars/<host>

where groups apply shallow to deep, then by `ansible_group_priority`, then by name, and a later
value replaces an earlier one whole (dicts are not merged).

Where Ansible only warns (unknown keys in a group, a group that is not a mapping, a duplicate
YAML key) netops refuses, with file:line:col, because a silently dropped group means a
maintenance run that misses nodes.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import json
import re
import shlex
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from netops.errors import LoadError, SourceSpan, UserError
from netops.inventory.model import Group, Host, Inventory, Unsafe
from netops.inventory.patterns import RangeError, expand_hosts

YAML_EXTENSIONS = (".yaml", ".yml", ".json")
SECTIONS = ("hosts", "children", "vars")
# Ansible's INTERNAL_STATIC_VARS that can come from an inventory: never shown in hostvars.
_INTERNAL = frozenset({
    "inventory_dir", "inventory_file", "inventory_hostname", "inventory_hostname_short",
    "groups", "group_names", "hostvars", "playbook_dir", "play_hosts", "role_name",
    "role_names", "role_path", "role_uuid", "ansible_facts", "ansible_version", "ansible_limit",
    "ansible_forks", "ansible_verbosity", "ansible_play_batch", "ansible_play_hosts",
    "ansible_play_hosts_all", "ansible_play_role_names", "ansible_playbook_python",
    "ansible_role_name", "ansible_role_names", "ansible_run_tags", "ansible_skip_tags",
    "ansible_inventory_sources", "ansible_config_file", "ansible_diff_mode",
    "ansible_async_path", "ansible_collection_name", "ansible_dependent_role_names",
})
_TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


def load_inventory(path: Path | str) -> Inventory:
    """Read an inventory file and the group_vars/ and host_vars/ beside it.

    Raises:
        UserError: the file does not exist.
        LoadError: it cannot be parsed or has the wrong shape (with file:line:col).
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not an inventory file" if path.is_dir() else "does not exist"
        raise UserError(f"inventory {path} {what}",
                        hint="pass one with -i/--inventory PATH or set NETOPS_INVENTORY")
    text = path.read_text(encoding="utf-8")
    build = _Builder(path)
    if _is_yaml(path, text):
        _YamlInventory(build, path, text).parse()
    else:
        _IniInventory(build, path, text).parse()
    return build.freeze()


def _is_yaml(path: Path, text: str) -> bool:
    """Ansible tries its yaml plugin on .yaml/.yml/.json and extension-less files, then ini."""
    ext = path.suffix.lower()
    if ext == ".toml":
        raise LoadError("TOML inventories are not supported", SourceSpan(path, 1, 1),
                        "convert it to an Ansible YAML inventory")
    if ext in YAML_EXTENSIONS:
        return True
    if ext:
        return False
    first = next((ln.strip() for ln in text.splitlines()
                  if ln.strip() and ln.strip()[0] not in "#;"), "")
    if first.startswith("["):
        return False
    try:
        return isinstance(yaml.compose(text, Loader=yaml.SafeLoader), yaml.MappingNode)
    except yaml.YAMLError:
        return False


# -- the group/host graph, built the way Ansible's InventoryData builds it -----------------------
@dataclass
class _Group:
    name: str
    hosts: dict[str, None] = field(default_factory=dict)  # an ordered set
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    priority: int = 1


class _GraphError(ValueError):
    """A structural problem found while linking groups; the parser adds the position."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class _Builder:
    def __init__(self, source: Path) -> None:
        self.source = source
        self.groups: dict[str, _Group] = {"all": _Group("all", children=["ungrouped"]),
                                          "ungrouped": _Group("ungrouped", parents=["all"])}
        self.hosts: dict[str, dict[str, Any]] = {}

    def group(self, name: str) -> _Group:
        return self.groups.setdefault(name, _Group(name))

    def add_host(self, name: str, group: str, port: int | None) -> dict[str, Any]:
        """Add `name` to `group`; a `host:port` port counts only where the host first appears."""
        if name not in self.hosts:
            self.hosts[name] = {} if port is None else {"ansible_port": port}
        self.groups[group].hosts.setdefault(name)
        return self.hosts[name]

    def add_child(self, parent: str, child: str) -> None:
        if child == parent or child in self.ancestors(parent):
            raise _GraphError(f"making {child!r} a child of {parent!r} creates a loop",
                              "a group cannot contain itself, directly or through its children")
        if child not in self.groups[parent].children:
            self.groups[parent].children.append(child)
            self.groups[child].parents.append(parent)

    def set_group_var(self, group: str, key: str, value: Any) -> None:
        if key != "ansible_group_priority":
            self.groups[group].vars[key] = value
            return
        try:  # Ansible keeps it out of the variables; it only orders groups
            self.groups[group].priority = int(value)
        except (TypeError, ValueError):
            raise _GraphError(f"group {group!r}: ansible_group_priority must be a whole "
                              f"number, got {value!r}") from None

    def ancestors(self, name: str) -> set[str]:
        found: set[str] = set()
        todo = list(self.groups[name].parents)
        while todo:
            parent = todo.pop()
            if parent not in found:
                found.add(parent)
                todo.extend(self.groups[parent].parents)
        return found

    def _reconcile(self) -> None:
        """InventoryData.reconcile_inventory: orphan groups join "all", and "ungrouped" holds
        exactly the hosts that are in no other group."""
        for group in list(self.groups.values()):
            if group.name != "all" and not group.parents:
                self.groups["all"].children.append(group.name)
                group.parents.append("all")
        ungrouped = self.groups["ungrouped"].hosts
        member_of = self._membership()
        for host in self.hosts:
            others = member_of[host] - {"all", "ungrouped"}
            if host in ungrouped and others:
                del ungrouped[host]
            elif host not in ungrouped and not others:
                ungrouped[host] = None

    def _membership(self) -> dict[str, set[str]]:
        member_of: dict[str, set[str]] = {h: set() for h in self.hosts}
        for group in self.groups.values():
            lineage = {group.name} | self.ancestors(group.name)
            for host in group.hosts:
                member_of[host] |= lineage
        return member_of

    def _depths(self) -> dict[str, int]:
        depth: dict[str, int] = {}

        def of(name: str) -> int:
            if name not in depth:
                parents = self.groups[name].parents
                depth[name] = max((of(p) + 1 for p in parents), default=0)
            return depth[name]

        for name in self.groups:
            of(name)
        return depth

    def freeze(self) -> Inventory:
        self._reconcile()
        depth = self._depths()
        files = _VarsFiles(self.source.parent)
        file_vars = {name: files.load("group_vars", name) for name in self.groups}
        groups = {g.name: Group(g.name, tuple(g.hosts), tuple(g.children),
                                MappingProxyType(g.vars | file_vars[g.name]),
                                depth[g.name], g.priority) for g in self.groups.values()}
        member_of = self._membership()
        hosts: dict[str, Host] = {}
        for name, own in self.hosts.items():
            mine = sorted(member_of[name] - {"all"},
                          key=lambda g: (depth[g], self.groups[g].priority, g))
            merged = dict(self.groups["all"].vars)
            for g in mine:
                merged |= self.groups[g].vars
            merged |= file_vars["all"]
            for g in mine:
                merged |= file_vars[g]
            merged |= own
            merged |= files.load("host_vars", name)
            clean = {k: v for k, v in merged.items() if k not in _INTERNAL}
            hosts[name] = _host(name, ("all", *mine), clean, self.source)
        return Inventory(self.source, MappingProxyType(hosts), MappingProxyType(groups))


def _host(name: str, groups: tuple[str, ...], hv: dict[str, Any], source: Path) -> Host:
    """Connection settings from a host's merged variables (the ssh plugin's names)."""

    def first(*keys: str) -> Any:
        return next((hv[k] for k in keys if hv.get(k) is not None), None)

    port = first("ansible_port", "ansible_ssh_port")
    if port is not None:
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise LoadError(f"{source}: host {name!r}: ansible_port must be a number, got "
                            f"{port!r}", hint="set it where the host or its groups are "
                            "defined, or in host_vars/ or group_vars/") from None
    user, key = first("ansible_user", "ansible_ssh_user"), first(
        "ansible_ssh_private_key_file", "ansible_private_key_file")
    become = hv.get("ansible_become", False)
    if isinstance(become, str):  # Ansible's boolean(): yes/on/true/1/y/t, any case
        become = become.strip().lower() in _TRUE
    return Host(
        name=name, address=str(first("ansible_host", "ansible_ssh_host") or name), port=port,
        user=None if user is None else str(user),
        key_file=None if key is None else str(Path(str(key)).expanduser()),
        become=become in (True, 1),
        groups=groups, vars=MappingProxyType(hv))


# -- YAML -----------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """Safe YAML plus Ansible's `!unsafe`; `!vault` is refused (netops has no vault)."""

    def unsafe(self, node: yaml.Node) -> Unsafe:
        assert isinstance(node, yaml.ScalarNode)
        return Unsafe(self.construct_scalar(node))

    def vault(self, node: yaml.Node) -> Any:
        raise yaml.constructor.ConstructorError(
            None, None, "vault-encrypted values (!vault) are not supported", node.start_mark)


_Loader.add_constructor("!unsafe", _Loader.unsafe)
_Loader.add_constructor("!vault", _Loader.vault)


class _Yaml:
    """One YAML file: its node tree (positions kept) and errors that point into it."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()
        self.constructor = _Loader("")  # only its constructor is used, on composed nodes
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            problem = " ".join(x for x in (e.context, e.problem) if x)
            raise self.error(e.problem_mark, f"invalid YAML: {problem}",
                             "check the indentation and quoting near this position") from None
        except yaml.YAMLError as e:
            raise self.error(None, f"invalid YAML: {e}") from None
        if self.root is not None:
            self._check_duplicates(self.root, set())

    def error(self, mark: yaml.Mark | None, message: str, hint: str = "") -> LoadError:
        if mark is None:
            return LoadError(message, SourceSpan(self.path, 1, 1), hint)
        line, col = mark.line + 1, mark.column + 1
        caret = ""
        if 0 < line <= len(self.lines):
            caret = f"\n  {line:>4} | {self.lines[line - 1]}\n       | {' ' * (col - 1)}^"
        return LoadError(message + caret, SourceSpan(self.path, line, col), hint)

    def _check_duplicates(self, node: yaml.Node, seen: set[int]) -> None:
        """PyYAML lets a later key silently replace an earlier one; netops refuses."""
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, Any], yaml.Node] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                    if (key.tag, key.value) in first:
                        line = first[(key.tag, key.value)].start_mark.line + 1
                        raise self.error(key.start_mark, f"duplicate key {key.value!r} (first "
                                         f"at line {line})", "a key may appear only once")
                    first[(key.tag, key.value)] = key
                self._check_duplicates(value, seen)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                self._check_duplicates(item, seen)

    def value(self, node: yaml.Node) -> Any:
        try:
            return _plain(self.constructor.construct_document(node))
        except yaml.MarkedYAMLError as e:
            raise self.error(e.problem_mark, str(e.problem)) from None

    def pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        """The key/value nodes of a mapping, with `<<` merge keys applied."""
        try:
            self.constructor.flatten_mapping(node)
        except yaml.MarkedYAMLError as e:
            raise self.error(e.problem_mark, str(e.problem)) from None
        return list(node.value)

    def name(self, node: yaml.Node, what: str) -> str:
        if not (isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG and node.value):
            raise self.error(node.start_mark, f"{what} must be a non-empty string, got "
                             f"{_kind(node)}", "quote it, e.g. \"10\": or \"yes\":")
        return str(node.value)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag = str(node.tag).rsplit(":", 1)[-1]
    return {"str": f"the string {node.value!r}", "null": "nothing", "bool": "a boolean",
            "int": "a number", "float": "a number"}.get(tag, f"a {tag}")


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _plain(value: Any) -> Any:
    """Values as ansible-inventory prints them: JSON keys, dates as ISO strings."""
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _key(key: Any) -> Any:
    if isinstance(key, str):
        return key
    return json.dumps(key) if isinstance(key, bool | None | int | float) else str(key)


class _YamlInventory:
    """The yaml inventory plugin: every top-level key is a group with hosts/children/vars."""

    def __init__(self, build: _Builder, path: Path, text: str) -> None:
        self.build, self.doc = build, _Yaml(path, text)

    def parse(self) -> None:
        root = self.doc.root
        if root is None or (isinstance(root, yaml.MappingNode) and not root.value):
            raise self.doc.error(None, "the inventory is empty",
                                 "start with `all:` and put hosts under `hosts:`")
        if not isinstance(root, yaml.MappingNode):
            raise self.doc.error(root.start_mark, "an inventory must be a mapping of group "
                                 f"names, got {_kind(root)}", "start with `all:`")
        pairs = self.doc.pairs(root)
        for key, _ in pairs:
            if isinstance(key, yaml.ScalarNode) and key.value == "plugin":
                raise self.doc.error(key.start_mark, "dynamic inventory plugins are not "
                                     "supported", "export it: ansible-inventory -i FILE "
                                     "--list --yaml > inventory.yaml")
        for key, value in pairs:
            self.group(key, value)

    def group(self, key: yaml.Node, node: yaml.Node) -> str:
        name = self.doc.name(key, "a group name")
        self.build.group(name)
        if _is_null(node):
            return name
        if not isinstance(node, yaml.MappingNode):
            raise self.doc.error(node.start_mark, f"group {name!r} must be a mapping with "
                                 f"hosts, children or vars, got {_kind(node)}",
                                 "an empty group is written `name:` or `name: {}`")
        for section_key, section in self.doc.pairs(node):
            what = self.doc.name(section_key, f"a key of group {name!r}")
            if what not in SECTIONS:
                close = difflib.get_close_matches(what, SECTIONS, n=1)
                raise self.doc.error(section_key.start_mark, f"group {name!r}: unexpected key "
                                     f"{what!r}; a group has only hosts, children and vars",
                                     f"did you mean {close[0]!r}?" if close else "")
            for k, v in self._entries(name, what, section):
                try:
                    if what == "vars":
                        var = self.doc.name(k, "a variable name")
                        self.build.set_group_var(name, var, self.doc.value(v))
                    elif what == "children":
                        self.build.add_child(name, self.group(k, v))
                    else:
                        self.hosts(name, k, v)
                except _GraphError as e:
                    raise self.doc.error(k.start_mark, e.message, e.hint) from None
        return name

    def _entries(self, group: str, section: str, node: yaml.Node,
                 ) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        if _is_null(node):
            return iter(())
        if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG:
            # Ansible reads `hosts: web1` as `hosts: {web1: }` (same for children and vars)
            return iter([(node, yaml.ScalarNode("tag:yaml.org,2002:null", "",
                                                node.start_mark, node.end_mark))])
        if not isinstance(node, yaml.MappingNode):
            expected, hint = {
                "hosts": ("host names to variables", "write each host as a key, `web1:` or "
                          "`web1: {ansible_host: 10.0.0.1}`, without a leading '- '"),
                "children": ("group names to groups", "write each child group as a key, "
                             "`workers:`, without a leading '- '"),
                "vars": ("variable names to values", "write each variable as `name: value`"),
            }[section]
            raise self.doc.error(node.start_mark, f"group {group!r}: {section!r} must be a "
                                 f"mapping of {expected}, got {_kind(node)}", hint)
        return iter(self.doc.pairs(node))

    def hosts(self, group: str, key: yaml.Node, node: yaml.Node) -> None:
        pattern = self.doc.name(key, "a host name")
        try:
            names, port = expand_hosts(pattern)
        except RangeError as e:
            raise self.doc.error(key.start_mark, f"host {pattern!r}: {e}",
                                 "ranges look like node[1:9], node[01:18], node[a:f], "
                                 "node[0:10:2]") from None
        if not (_is_null(node) or isinstance(node, yaml.MappingNode)):
            raise self.doc.error(node.start_mark, f"host {pattern!r} in group {group!r}: its "
                                 f"variables must be a mapping, got {_kind(node)}",
                                 f"write `{pattern}:` alone, or `{pattern}: "
                                 "{ansible_host: 10.0.0.1}`")
        variables = {} if _is_null(node) else self.doc.value(node)
        for name in names:
            self.build.add_host(name, group, port).update(variables)


# -- INI ------------------------------------------------------------------------------------------
_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")


@dataclass
class _Pending:
    """A group used before its own [section]: Ansible allows it if the section comes later."""

    state: str
    span: SourceSpan
    parents: list[str] = field(default_factory=list)


class _IniInventory:
    """The ini inventory plugin, line by line; lines before any section are "ungrouped"."""

    def __init__(self, build: _Builder, path: Path, text: str) -> None:
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
            except _GraphError as e:
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
        return LoadError(f"{message}\n  {span.line:>4} | {self.lines[span.line - 1]}",
                         span, hint)

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
        return {_key(k): _ini_coerce(v) for k, v in value.items()}
    if value is ... or isinstance(value, complex):
        return "..." if value is ... else str(value)
    return _plain(value)


# -- group_vars/ and host_vars/ -------------------------------------------------------------------
class _VarsFiles:
    """Ansible's host_group_vars plugin: `<dir>/NAME`, `NAME.yml|.yaml|.json` (the first that
    exists), where a directory contributes every file inside, sorted, recursively."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def load(self, kind: str, name: str) -> dict[str, Any]:
        folder = self.base / kind
        if name.startswith("/") or not folder.is_dir():
            return {}
        merged: dict[str, Any] = {}
        for ext in ("", *YAML_EXTENSIONS):
            candidate = folder / (name + ext)
            if candidate.exists():
                files = self._dir(candidate) if candidate.is_dir() else [candidate]
                for file in files:
                    merged |= self._read(file)
                break
        return merged

    def _dir(self, folder: Path) -> list[Path]:
        found: list[Path] = []
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if entry.name.startswith(".") or entry.name.endswith("~"):
                continue
            if entry.is_dir() and not entry.suffix:
                found += self._dir(entry)
            elif entry.is_file() and (not entry.suffix or entry.suffix in YAML_EXTENSIONS):
                found.append(entry)
        return found

    def _read(self, file: Path) -> dict[str, Any]:
        text = file.read_text(encoding="utf-8")
        if text.startswith("$ANSIBLE_VAULT"):
            raise LoadError("vault-encrypted files are not supported", SourceSpan(file, 1, 1),
                            "decrypt it, or keep secrets out of the inventory")
        try:
            data = json.loads(text)  # Ansible's loader tries JSON first, then YAML
        except ValueError:
            doc = _Yaml(file, text)
            data = None if doc.root is None else doc.value(doc.root)
        if not data:
            return {}
        if not isinstance(data, dict):
            raise LoadError(f"a variables file must be a mapping of names to values, got "
                            f"{type(data).__name__}", SourceSpan(file, 1, 1))
        return dict(_plain(data))
