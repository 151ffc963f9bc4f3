"""YAML inventories, parsed as Ansible's yaml inventory plugin parses them, with positions kept.

`YamlDocument` is one YAML file as a node tree, so that every error points at file:line:col
with the line quoted and a caret under the column; `load.py` reads group_vars/ and host_vars/
files with it too. `YamlInventory` walks an inventory's groups into an `InventoryBuilder`.
Where Ansible only warns (unknown keys in a group, a group that is not a mapping, a duplicate
key) netops refuses, because a silently dropped group means a maintenance run that misses nodes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from netops.inventory.model import Unsafe
from netops.inventory.parse_common import SECTIONS, GraphError, expand_hosts, plain_value
from netops.inventory.patterns import RangeError
from netops.yamlfile import YamlFile, constructor_tags

if TYPE_CHECKING:
    from netops.inventory.load import InventoryBuilder

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class _Loader(yaml.SafeLoader):
    """Safe YAML plus Ansible's `!unsafe`; `!vault` is refused (netops has no vault)."""

    def unsafe(self, node: yaml.Node) -> Unsafe:
        if not isinstance(node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "!unsafe marks a string, not a list or a mapping", node.start_mark)
        return Unsafe(self.construct_scalar(node))

    def vault(self, node: yaml.Node) -> Any:
        raise yaml.constructor.ConstructorError(
            None, None, "vault-encrypted values (!vault) are not supported", node.start_mark)


_Loader.add_constructor("!unsafe", _Loader.unsafe)
_Loader.add_constructor("!vault", _Loader.vault)
_TAGS = constructor_tags(_Loader)


class YamlDocument(YamlFile):
    """One YAML file: its node tree (positions kept, checked by `YamlFile`) and errors that
    point into it."""

    def __init__(self, path: Path, text: str) -> None:
        super().__init__(path, text, _TAGS)
        self.constructor = _Loader("")  # only its constructor is used, on composed nodes
        if self.root is not None:
            self._check_duplicates(self.root, set())

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
            return plain_value(self.constructor.construct_document(node))
        except yaml.MarkedYAMLError as e:
            raise self.error(e.problem_mark, str(e.problem)) from None
        except (ValueError, OverflowError):  # 2024-13-45, a 5000-digit number: find which
            self.constructor = _Loader("")
            bad, error = self._bad_scalar(node)
            raise self.error(bad.start_mark, f"bad value {str(bad.value)[:40]!r}: {error}",
                             "quote it to keep it a string") from None

    def _bad_scalar(self, node: yaml.Node) -> tuple[yaml.Node, Exception]:
        """The first scalar under `node` that does not construct, and why (`node` itself and
        the exception's text when none is found alone)."""
        todo, seen = [node], set()
        while todo:
            item = todo.pop()
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, yaml.ScalarNode):
                try:
                    _Loader("").construct_object(item)
                except (ValueError, OverflowError, yaml.YAMLError) as e:
                    return item, e
            elif isinstance(item, yaml.MappingNode):
                todo.extend(n for pair in reversed(item.value) for n in reversed(pair))
            elif isinstance(item, yaml.SequenceNode):
                todo.extend(reversed(item.value))
        return node, ValueError("cannot be read")

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


class YamlInventory:
    """The yaml inventory plugin: every top-level key is a group with hosts/children/vars."""

    def __init__(self, build: InventoryBuilder, path: Path, text: str) -> None:
        self.build, self.doc = build, YamlDocument(path, text)

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
                except GraphError as e:
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
        if not isinstance(variables, dict):  # e.g. a !!set
            raise self.doc.error(node.start_mark, f"host {pattern!r} in group {group!r}: its "
                                 f"variables must be a mapping, got a {node.tag.rsplit(':')[-1]}")
        for name in names:
            self.build.add_host(name, group, port).update(variables)
