"""netops lab: real sshd nodes in network namespaces on one bridge (DESIGN.md "The lab")."""

from netops.lab.lab import BootHook, Lab, check_host
from netops.lab.model import LabError, NodeDefaults, NodeStatus, parse_names

__all__ = ["BootHook", "Lab", "LabError", "NodeDefaults", "NodeStatus", "check_host",
           "parse_names"]
