"""Lab vocabulary: node names, addresses, kernel object names, defaults, status rows."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from netops.errors import NetopsError, UserError

# RFC 2544 benchmarking space: never routed, so a lab cannot shadow a real network.
LAB_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
CONTROL_PLANE = ("chick1", "chick2", "chick3")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,7}$")


class LabError(NetopsError):
    """The lab could not be built, changed or torn down (not the user's input: exit 1)."""


def parse_names(spec: str) -> list[str]:
    """`6` -> chick1..chick6; `chick11,chick12` -> exactly those."""
    spec = spec.strip()
    if spec.isdigit():
        count = int(spec)
        if not 1 <= count <= 1000:
            raise UserError(f"--nodes {spec}: a lab has 1 to 1000 nodes")
        return [f"chick{i}" for i in range(1, count + 1)]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    bad = [n for n in names if not _NAME.match(n)]
    if not names or bad:
        raise UserError(f"--nodes {spec!r}: give a count or comma-separated host names "
                        "(lower-case letters, digits, '-')")
    if len(set(names)) != len(names):
        raise UserError(f"--nodes {spec!r}: a name appears twice")
    return names


@dataclass(frozen=True, slots=True)
class Net:
    """The lab's addressing and the names of its kernel objects."""

    prefix: str
    subnet: ipaddress.IPv4Network

    @classmethod
    def create(cls, prefix: str, subnet: str) -> Net:
        if not _PREFIX.match(prefix):
            raise UserError(f"lab prefix {prefix!r}: 1-8 lower-case letters or digits "
                            "(interface names are limited to 15 characters)")
        try:
            net = ipaddress.IPv4Network(subnet)
        except ValueError as e:
            raise UserError(f"lab subnet {subnet!r}: {e}") from e
        if not net.subnet_of(LAB_RANGE):
            raise UserError(f"lab subnet {subnet} is outside {LAB_RANGE} (RFC 2544), "
                            "the only range the lab uses")
        return cls(prefix, net)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br0"

    @property
    def gateway(self) -> str:
        """The bridge's address in the root netns: the controller reaches nodes over L2."""
        return str(self.subnet.network_address + 1)

    def address(self, index: int) -> str:
        """Node `index` (1-based) gets the address after the gateway's."""
        if index + 2 > self.subnet.num_addresses - 1:
            raise UserError(f"lab subnet {self.subnet} has no room for {index} nodes")
        return str(self.subnet.network_address + 1 + index)

    def veth(self, index: int) -> str:
        """Host end of node `index`'s veth (the node end is always eth0)."""
        return f"{self.prefix}{index}h"

    def mac(self, index: int) -> str:
        """A stable locally administered MAC, so a rebooted node keeps its ARP identity."""
        octets = ipaddress.IPv4Address(self.address(index)).packed
        return "02:00:" + ":".join(f"{b:02x}" for b in octets)

    def bridge_mac(self) -> str:
        """Pinned: a bridge otherwise takes the lowest port MAC and changes it as ports come."""
        octets = ipaddress.IPv4Address(self.gateway).packed
        return "02:01:" + ":".join(f"{b:02x}" for b in octets)

    @property
    def cidr_len(self) -> int:
        return self.subnet.prefixlen


@dataclass(frozen=True, slots=True)
class NodeDefaults:
    """What a fresh lab node looks like; fault injection starts from here.

    `enabled_units` are symlinked into the node's multi-user.target.wants at the first `up`, so
    they persist and start at every boot (docker's start sets FORWARD DROP, like Docker >= 1.13).
    `etc_files` are written into the node's /etc at the first `up`: what kubeadm's install
    guide has a healthy node persist (br_netfilter loaded, ip_forward and bridge-nf-call-* on).
    `runtime_sysctls` are set after the first boot only. Faults take a node away from this.
    """

    enabled_units: tuple[str, ...] = ("containerd.service", "docker.service", "kubelet.service",
                                      "ssh.service")
    runtime_sysctls: tuple[tuple[str, str], ...] = (("net.ipv4.ip_forward", "1"),)
    etc_files: tuple[tuple[str, str], ...] = (
        ("modules-load.d/k8s.conf", "overlay\nbr_netfilter\n"),
        ("sysctl.d/99-kubernetes-cri.conf", "net.bridge.bridge-nf-call-iptables  = 1\n"
         "net.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward                 = 1\n"),
    )
    reboot_grace_s: float = 0.3
    """How long the `reboot` stand-in's caller keeps its session before the node goes down."""

    def to_json(self) -> dict[str, object]:
        return {"enabled_units": list(self.enabled_units),
                "runtime_sysctls": [list(kv) for kv in self.runtime_sysctls],
                "reboot_grace_s": self.reboot_grace_s}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> NodeDefaults:
        base = cls()
        units = data.get("enabled_units", base.enabled_units)
        sysctls = data.get("runtime_sysctls", base.runtime_sysctls)
        grace = data.get("reboot_grace_s", base.reboot_grace_s)
        assert isinstance(units, Sequence) and isinstance(sysctls, Sequence)
        assert isinstance(grace, int | float)
        return cls(tuple(str(u) for u in units),
                   tuple((str(k), str(v)) for k, v in sysctls), reboot_grace_s=float(grace))


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One row of `netops lab status`."""

    name: str
    address: str
    netns: bool
    sshd: bool
    boot_id: str | None
    anchor_pid: int | None = None
    uptime_s: float | None = None

