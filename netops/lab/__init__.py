"""netops lab: real sshd nodes in network namespaces on one bridge (DESIGN.md "The lab").

Names are imported on first use, so that mounting `netops lab` on the CLI costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netops.lab.lab import BootHook, Lab, check_host
    from netops.lab.model import LabError, NodeDefaults, NodeStatus, parse_names

__all__ = ["BootHook", "Lab", "LabError", "NodeDefaults", "NodeStatus", "check_host",
           "parse_names"]
_WHERE = {"BootHook": "lab", "Lab": "lab", "check_host": "lab", "LabError": "model",
          "NodeDefaults": "model", "NodeStatus": "model", "parse_names": "model"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"netops.lab.{_WHERE[name]}"), name)
