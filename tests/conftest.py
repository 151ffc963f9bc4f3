"""Shared fixtures. `make_lab` / `lab`: real lab nodes (root, sshd), torn down after the module."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from netops.lab import Lab, NodeDefaults

MakeLab = Callable[..., "Lab"]
# Labs from this fixture use prefixes nt200.. and subnets 198.19.200.0/24..; modules that
# build their own labs use lower numbers (tests/integration/helpers.py: 111, 112, ...).
_K = itertools.count(200)


def skip_unless_lab_possible() -> None:
    from netops.errors import UserError
    from netops.lab import check_host

    try:
        check_host(etcd=False)
    except UserError as e:
        pytest.skip(f"lab tests need root, sshd and iproute2/util-linux: {e}")


@pytest.fixture(scope="module")
def make_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeLab]:
    """Factory: `make_lab(names, etcd=False, kube=True, defaults=None)` builds a lab with a
    prefix and a 198.19.<k>.0/24 subnet no other lab on the machine uses; every lab is down
    after the module."""
    skip_unless_lab_possible()
    from netops.errors import UserError
    from netops.lab import Lab

    made: list[Lab] = []

    def make(names: Sequence[str], *, etcd: bool = False, kube: bool = True,
             defaults: NodeDefaults | None = None) -> Lab:
        for _ in range(40):
            k = next(_K)
            if k > 254:
                break
            if Path(f"/sys/class/net/nt{k}br0").exists():
                continue
            lab = Lab(tmp_path_factory.mktemp(f"lab{k}"), prefix=f"nt{k}",
                      subnet=f"198.19.{k}.0/24", defaults=defaults)
            try:
                lab.up(list(names), etcd=etcd, kube=kube)
            except UserError as e:  # taken by another test run meanwhile: try the next k
                if "exists" in str(e) or "overlaps" in str(e):
                    continue
                raise
            made.append(lab)
            return lab
        pytest.fail("no free lab prefix/subnet (nt200..nt254)")

    yield make
    for lab in made:
        lab.down()


@pytest.fixture(scope="module")
def lab(make_lab: MakeLab) -> Lab:
    """Three nodes, chick1..chick3, no etcd."""
    return make_lab(["chick1", "chick2", "chick3"])



@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With NETOPS_REQUIRE_ALL=1 (scripts/test.sh, CI) a skipped test fails: a machine that
    lacks sshd or etcd must not pass by skipping the lab."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("NETOPS_REQUIRE_ALL") == "1":
        report.outcome = "failed"
        report.longrepr = f"skipped, but NETOPS_REQUIRE_ALL=1 needs every test: {report.longrepr}"
