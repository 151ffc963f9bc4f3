"""The resolved inventory: hosts with their merged variables, groups, and `--limit` selection.

Everything here is frozen and computed once by `netops.inventory.load`; the variables of a
host are exactly what `ansible-inventory --list` prints for it under `_meta.hostvars`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from netops.errors import UnknownTarget

EMPTY: Mapping[str, Any] = MappingProxyType({})


class Unsafe(str):
    """A string tagged `!unsafe` in YAML: Ansible never templates it, and prints it wrapped."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Host:
    """One inventory host with its connection settings resolved from its variables."""

    name: str
    """The inventory name (what `--nodes` matches)."""
    address: str
    """Where to connect: `ansible_host`, else the name."""
    port: int | None = None
    """`ansible_port`; None lets ssh_config (or 22) decide."""
    user: str | None = None
    """`ansible_user`; None lets ssh_config decide."""
    key_file: str | None = None
    """`ansible_ssh_private_key_file`, with `~` expanded."""
    become: bool = False
    """`ansible_become`, parsed as Ansible parses booleans: every command of the host (and
    its lock) runs through `sudo -n -u become_user`."""
    become_user: str = "root"
    """`ansible_become_user`: who `become` (the host's, or a step's) runs commands as."""
    ssh_args: str = ""
    """`ansible_ssh_common_args` then `ansible_ssh_extra_args`, as written (ssh options; the
    SSH transport honours the ones it knows and refuses the others)."""
    groups: tuple[str, ...] = ("all",)
    """Every group the host is in, directly or through children: "all" first, then in the
    order their variables apply (depth, `ansible_group_priority`, name)."""
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    """The fully merged variables, as `ansible-inventory --list` shows them."""


@dataclass(frozen=True, slots=True)
class Group:
    """One group as defined: its direct hosts and child groups, and its own variables."""

    name: str
    hosts: tuple[str, ...] = ()
    """Hosts listed directly in the group, in definition order."""
    children: tuple[str, ...] = ()
    """Child groups, in definition order."""
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    """The group's own variables: inventory file, then group_vars/ files over them."""
    depth: int = 0
    """Longest path from "all"; deeper groups' variables win (Ansible's sort_groups)."""
    priority: int = 1
    """`ansible_group_priority` set in the inventory file; breaks ties between equal depths."""


@dataclass(frozen=True, slots=True, eq=False)
class Inventory:
    """A loaded inventory. `hosts` and `groups` keep definition order."""

    source: Path
    """The first inventory source (file or directory)."""
    hosts: Mapping[str, Host]
    groups: Mapping[str, Group]
    sources: tuple[Path, ...] = ()
    """Every source, in the order given (`-i A -i B`)."""
    warnings: tuple[str, ...] = ()
    """What looks wrong but does not stop a run (an unknown `netops_*` variable), one line
    each."""

    def select(self, pattern: str | None) -> tuple[Host, ...]:
        """Hosts matching an Ansible `--limit` pattern, in inventory order, no duplicates.

        Raises:
            UnknownTarget: an item of the pattern matches no host or group.
        """
        from netops.inventory.patterns import select

        return select(self, pattern)

    def host(self, name: str) -> Host:
        """The host called `name`; UnknownTarget (with close matches) if there is none."""
        try:
            return self.hosts[name]
        except KeyError:
            from netops.inventory.patterns import close_matches

            raise UnknownTarget(name, close_matches(self, name)) from None

    def group_names(self) -> tuple[str, ...]:
        """Every group name in definition order ("all" and "ungrouped" first)."""
        return tuple(self.groups)

    def group_hosts(self, name: str) -> tuple[Host, ...]:
        """Hosts in a group or any of its descendants, in inventory order."""
        names: set[str] = set()
        todo, seen = [name], set()
        while todo:
            group = self.groups[todo.pop()]
            if group.name not in seen:
                seen.add(group.name)
                names.update(group.hosts)
                todo.extend(group.children)
        return tuple(h for h in self.hosts.values() if h.name in names)

    def to_ansible_list(self, only: Collection[str] | None = None) -> dict[str, Any]:
        """The document `ansible-inventory -i FILE [--limit P] --list` prints, as parsed JSON.

        `only` restricts it to those hosts, as `--limit` does.

        Like ansible-core 2.19: groups with neither hosts nor children are left out (but still
        named by their parents), "all" lists no hosts, hosts without variables have no
        `_meta.hostvars` entry, and group variables appear only merged into hostvars.
        """
        doc: dict[str, Any] = {}
        seen: set[str] = set()

        def visit(group: Group) -> None:
            entry: dict[str, list[str]] = {}
            hosts = [h for h in group.hosts if only is None or h in only]
            if hosts and group.name != "all":
                entry["hosts"] = hosts
            if group.children:
                entry["children"] = list(group.children)
            if entry:
                doc[group.name] = entry
            for child in group.children:
                if child not in seen:
                    seen.add(child)
                    visit(self.groups[child])

        visit(self.groups["all"])
        hostvars = {h.name: to_json(h.vars) for h in self.hosts.values()
                    if h.vars and (only is None or h.name in only)}
        doc["_meta"] = {"hostvars": hostvars, "profile": "inventory_legacy"}
        return doc


def to_json(value: Any) -> Any:
    """`value` as ansible-inventory's JSON encoder writes it (unsafe strings are wrapped)."""
    if isinstance(value, Unsafe):
        return {"__ansible_unsafe": str(value)}
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
