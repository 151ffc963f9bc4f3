"""Ansible-compatible inventories: `load_inventory(path)` -> `Inventory` of `Host` and `Group`.

`Inventory.select(pattern)` takes Ansible `--limit` syntax; `Inventory.to_ansible_list()` is
the document `ansible-inventory --list` prints for the same file.
"""

from netops.inventory.load import load_inventory
from netops.inventory.model import Group, Host, Inventory

__all__ = ["Group", "Host", "Inventory", "load_inventory"]
