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

The parsers live beside this module: `yaml_inventory.py` (positions kept, so errors carry
file:line:col) and `ini_inventory.py`; both feed the `InventoryBuilder` here, which links the
group graph and applies the precedence above in `freeze()`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from netops.errors import LoadError, SourceSpan, UserError
from netops.inventory.model import Group, Host, Inventory
from netops.inventory.parse_common import GraphError, plain_value
from netops.inventory.yaml_inventory import YamlDocument, YamlInventory
from netops.yamlfile import MAX_DEPTH, compose, read_text

YAML_EXTENSIONS = (".yaml", ".yml", ".json")
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
    text = read_text(path, "inventory")
    build = InventoryBuilder(path)
    if _is_yaml(path, text):
        YamlInventory(build, path, text).parse()
    else:
        from netops.inventory.ini_inventory import IniInventory  # only INI files need it

        IniInventory(build, path, text).parse()
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
        return isinstance(compose(text), yaml.MappingNode)
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


class InventoryBuilder:
    """Groups and hosts as the parsers add them; `freeze()` resolves them into an `Inventory`."""

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
            raise GraphError(f"making {child!r} a child of {parent!r} creates a loop",
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
            raise GraphError(f"group {group!r}: ansible_group_priority must be a whole "
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


def _expand_user(path: str) -> str:
    """`~/x` and `~user/x` expanded; kept as written when there is no such user (connecting
    then fails on the missing key file, naming it)."""
    try:
        return str(Path(path).expanduser())
    except RuntimeError:
        return path


def _shallow(value: Any) -> bool:
    """Whether JSON data nests at most MAX_DEPTH levels (YAML is held to it by YamlFile)."""
    todo = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return False
            todo.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                  else item))
    return True


def _host(name: str, groups: tuple[str, ...], hv: dict[str, Any], source: Path) -> Host:
    """Connection settings from a host's merged variables (the ssh plugin's names)."""

    def first(*keys: str) -> Any:
        return next((hv[k] for k in keys if hv.get(k) is not None), None)

    port = first("ansible_port", "ansible_ssh_port")
    if port is not None:
        try:
            port = int(port)
        except (TypeError, ValueError, OverflowError):
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
        key_file=None if key is None else _expand_user(str(key)),
        become=become in (True, 1),
        groups=groups, vars=MappingProxyType(hv))


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
            try:
                found = candidate.exists()
            except OSError:  # e.g. a name too long to be a file's: there is no such file
                found = False
            if found:
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
        text = read_text(file, "variables file")
        if text.startswith("$ANSIBLE_VAULT"):
            raise LoadError("vault-encrypted files are not supported", SourceSpan(file, 1, 1),
                            "decrypt it, or keep secrets out of the inventory")
        deep = False
        try:
            data = json.loads(text)  # Ansible's loader tries JSON first, then YAML
        except ValueError:  # not JSON (or a number JSON will not read): YAML, with positions
            doc = YamlDocument(file, text)
            data = None if doc.root is None else doc.value(doc.root)
        except RecursionError:  # JSON nested ~1000 deep
            data, deep = None, True
        if deep or not _shallow(data):  # YamlFile holds YAML to MAX_DEPTH; JSON the same
            raise LoadError(f"nested deeper than {MAX_DEPTH} levels", SourceSpan(file, 1, 1))
        if not data:
            return {}
        if not isinstance(data, dict):
            raise LoadError(f"a variables file must be a mapping of names to values, got "
                            f"{type(data).__name__}", SourceSpan(file, 1, 1))
        return dict(plain_value(data))
