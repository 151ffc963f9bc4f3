"""The calico-node fault of seed 000, registered into `faults.FAULTS`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netops.lab.faults import Fault

if TYPE_CHECKING:
    from netops.lab.lab import Lab


def healthy_calico(lab: Lab, node: str) -> None:
    """No stale calico-node containers (filled in below)."""


CALICO_FAULTS: tuple[Fault, ...] = ()
