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
# Labs from this fixture use prefixes nt60..nt99 and subnets 198.19.60.0/24..; modules that
# build their own labs use fixed numbers from 100 up (tests/integration/helpers.py: 111, ...),
# so that test workers running side by side (pytest-xdist) never reach for the same one.
_K = itertools.count(60)


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
            if k > 99:
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
        pytest.fail("no free lab prefix/subnet (nt60..nt99)")

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


# The longest modules (each builds its own lab and runs for minutes), longest first: with
# `pytest -n` (scripts/test.sh) they start first, so that no worker is left with one of them
# at the end while the others idle.
SLOW_FIRST = ("test_matrix.py", "test_lab_verify.py", "test_fix_calico.py", "test_library.py",
              "test_library_k8s.py", "test_readme.py", "test_transport_hardening.py",
              "test_promises.py", "test_run.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order within a module is kept
