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
from collections.abc import Iterable, Mapping, Sequence
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


def load_inventory(path: Path | str | Sequence[Path | str]) -> Inventory:
    """Read one or more inventory sources, as `ansible-inventory -i A -i B` does: each a file
    or a directory (every file in it, sorted, subdirectories too, group_vars/ and host_vars/
    aside: kubespray's `inventory/mycluster/`), with the group_vars/ and host_vars/ beside
    each file (in each directory).

    Raises:
        UserError: a source does not exist.
        LoadError: a file cannot be parsed or has the wrong shape (with file:line:col).
    """
    sources = [Path(p) for p in ([path] if isinstance(path, str | Path) else path)]
    if not sources:
        raise UserError("no inventory given", hint="pass one with -i/--inventory PATH")
    build = InventoryBuilder(sources)
    for source in sources:
        if source.is_dir():
            files = _directory_files(source)
            if not files:
                raise UserError(f"inventory directory {source} holds no inventory file",
                                hint="put hosts.yaml or inventory.ini in it")
        elif source.is_file():
            files = [source]
        else:
            raise UserError(f"inventory {source} does not exist",
                            hint="pass one with -i/--inventory PATH or set NETOPS_INVENTORY")
        for file in files:
            _parse(build, file)
    return build.freeze()


_IGNORED_EXTS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig",
                 ".cfg", ".retry")
"""Ansible's INVENTORY_IGNORE_EXTS: files of an inventory directory that are not parsed."""


def _directory_files(folder: Path) -> list[Path]:
    """The files Ansible reads from an inventory directory, in its order (sorted by name,
    subdirectories in place), skipping dot files, ignored extensions, group_vars/ and
    host_vars/."""
    found: list[Path] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name.endswith(_IGNORED_EXTS):
            continue
        if entry.is_dir():
            if entry.name not in ("group_vars", "host_vars"):
                found += _directory_files(entry)
        elif entry.is_file():
            found.append(entry)
    return found


def _parse(build: InventoryBuilder, path: Path) -> None:
    text = read_text(path, "inventory")
    if _is_yaml(path, text):
        YamlInventory(build, path, text).parse()
    else:
        from netops.inventory.ini_inventory import IniInventory  # only INI files need it

        IniInventory(build, path, text).parse()


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

    def __init__(self, sources: Sequence[Path]) -> None:
        self.sources = list(sources)
        self.source = self.sources[0]
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
        # group_vars/ and host_vars/ beside each source (in it, for a directory), applied
        # source by source as Ansible's vars plugins do (a source named twice, twice)
        vars_files = [_VarsFiles(s if s.is_dir() else s.parent) for s in self.sources]
        file_vars = {name: [f.load("group_vars", name) for f in vars_files]
                     for name in self.groups}
        groups = {g.name: Group(g.name, tuple(g.hosts), tuple(g.children),
                                MappingProxyType(_merged(g.vars, *file_vars[g.name])),
                                depth[g.name], g.priority) for g in self.groups.values()}
        member_of = self._membership()
        hosts: dict[str, Host] = {}
        for name, own in self.hosts.items():
            mine = sorted(member_of[name] - {"all"},
                          key=lambda g: (depth[g], self.groups[g].priority, g))
            merged = dict(self.groups["all"].vars)
            for g in mine:
                merged |= self.groups[g].vars
            for i in range(len(vars_files)):
                merged |= file_vars["all"][i]
            for i in range(len(vars_files)):
                for g in mine:
                    merged |= file_vars[g][i]
            merged |= own
            for f in vars_files:
                merged |= f.load("host_vars", name)
            clean = {k: v for k, v in merged.items() if k not in _INTERNAL}
            hosts[name] = _host(name, ("all", *mine), clean, self.source)
        warnings = _unknown_netops_vars(groups, self.hosts, vars_files)
        return Inventory(self.source, MappingProxyType(hosts), MappingProxyType(groups),
                         tuple(self.sources), warnings)


def _merged(first: dict[str, Any], *more: dict[str, Any]) -> dict[str, Any]:
    out = dict(first)
    for m in more:
        out |= m
    return out


KNOWN_NETOPS_VARS = ("netops_ssh_config", "netops_kubeconfig", "netops_kube_context",
                     "netops_kube_cache_dir", "netops_maintenance_window",
                     "netops_known_hosts", "netops_etcd_endpoints")
"""The `netops_*` inventory variables netops (or a shipped runbook) reads; any other is
most likely a typo, and gets a warning."""


def _unknown_netops_vars(groups: Mapping[str, Group], hosts: Mapping[str, dict[str, Any]],
                         vars_files: list[_VarsFiles]) -> tuple[str, ...]:
    """One line per unknown `netops_*` variable, where it is set, with a did-you-mean."""
    import difflib

    out: list[str] = []

    def check(where: str, names: Iterable[str]) -> None:
        for var in names:
            if var.startswith("netops_") and var not in KNOWN_NETOPS_VARS:
                close = difflib.get_close_matches(var, KNOWN_NETOPS_VARS, n=1)
                out.append(f"{where}: unknown variable {var!r}, ignored"
                           + (f" (did you mean {close[0]!r}?)" if close else
                              f" (netops reads {', '.join(KNOWN_NETOPS_VARS)})"))

    for group in groups.values():
        check(f"group {group.name!r}", group.vars)
    for name, own in hosts.items():
        check(f"host {name!r}", [*own, *(k for f in vars_files
                                        for k in f.load("host_vars", name))])
    return tuple(dict.fromkeys(out))


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
    become_user = str(hv.get("ansible_become_user") or "root")
    method = str(hv.get("ansible_become_method") or "sudo")
    if method != "sudo":
        raise LoadError(f"{source}: host {name!r}: ansible_become_method {method!r} is not "
                        "supported", hint="netops becomes another user with `sudo -n` only: "
                        "set ansible_become_method: sudo (or leave it out)")
    ssh_args = " ".join(str(hv[k]) for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args")
                        if hv.get(k))
    return Host(
        name=name, address=str(first("ansible_host", "ansible_ssh_host") or name), port=port,
        user=None if user is None else str(user),
        key_file=None if key is None else _expand_user(str(key)),
        become=become in (True, 1), become_user=become_user, ssh_args=ssh_args,
        groups=groups, vars=MappingProxyType(hv))


# -- group_vars/ and host_vars/ -------------------------------------------------------------------
class _VarsFiles:
    """Ansible's host_group_vars plugin: `<dir>/NAME`, `NAME.yml|.yaml|.json` (the first that
    exists), where a directory contributes every file inside, sorted, recursively."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._loaded: dict[tuple[str, str], dict[str, Any]] = {}

    def load(self, kind: str, name: str) -> dict[str, Any]:
        found = self._loaded.get((kind, name))
        if found is None:
            found = self._loaded[(kind, name)] = self._load(kind, name)
        return found

    def _load(self, kind: str, name: str) -> dict[str, Any]:
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
