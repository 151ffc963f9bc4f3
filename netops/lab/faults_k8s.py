"""Faults of the Kubernetes-facing runbooks (selinux-cni-install, fix-node-resolv-conf,
check-nodelocaldns, check-kube-proxy-rules), registered into `faults.FAULTS`, and their part of
the healthy baseline (`healthy_k8s`, called by `faults.healthy`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netops.lab.faults import Fault

if TYPE_CHECKING:
    from netops.lab.lab import Lab


def healthy_k8s(lab: Lab, node: str) -> None:
    """The Kubernetes-facing part of a healthy node (none yet)."""


K8S_FAULTS: tuple[Fault, ...] = ()
