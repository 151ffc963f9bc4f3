"""netops as an operator installs it (issue 15): a wheel built from this checkout, installed in a
fresh virtual environment (as `pipx install` would), run from an empty directory against a lab.
The runbook library ships inside the package; nothing of the checkout is on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netops.lab import Lab
from tests.integration.helpers import REPO, lab_for

pytestmark = pytest.mark.lab
NAMES = ["chick1", "chick11"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from lab_for(tmp_path_factory.mktemp("package"), NAMES, 192)


def _wheel(work: Path) -> Path:
    """The wheel of this checkout, built from a copy (the build writes nothing here)."""
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "netops", src / "netops",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(work / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (work / "dist").glob("netops-*.whl")
    return wheel


def _venv(work: Path, wheel: Path) -> Path:
    """A fresh venv with the wheel and its declared dependencies from the package index (a
    dependency netops imports but does not declare fails the commands below); without an
    index, one that sees this interpreter's packages, the wheel installed over them."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    done = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        shutil.rmtree(venv)
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                       check=True, timeout=120)
        subprocess.run([*pip, "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    return _venv(work, _wheel(work))


def test_the_installed_wheel_lists_shows_and_dry_runs_from_an_empty_directory(
        installed: Path, lab: Lab, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PATH": f"{installed / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
           "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "LANG": os.environ.get("LANG", "C.UTF-8")}

    def netops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["netops", *args], capture_output=True, text=True, cwd=empty,
                              env=env, timeout=300)

    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import netops; print(netops.__file__)"], capture_output=True,
                           text=True, cwd=empty, env=env, check=True).stdout
    assert where.startswith(str(installed)), where  # the wheel, not this checkout

    from netops import __version__

    version = netops("--version")
    assert version.returncode == 0 and version.stdout == f"netops {__version__}\n"

    listed = netops("list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    shipped = {p.stem for p in (REPO / "netops" / "runbooks").glob("*.yaml")}
    assert set(rows) == shipped
    assert all(row[2] == "packaged" for row in rows.values())

    shown = netops("show", "fix-calico")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("fix-calico (disruptive): ")
    assert f"source: {installed}" in shown.stdout

    inventory = str(lab.inventory_path)
    dry = netops("-i", inventory, "run", "check-ip-forward", "--nodes", "chick11", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "(dry run)" in dry.stderr and "chick11" in dry.stderr
    assert (tmp_path / "state" / "netops" / "journal.db").is_file()  # journaled, not in cwd
    calico = netops("-i", inventory, "run", "fix-calico", "--nodes", "chick11", "--dry-run")
    assert calico.returncode == 0, calico.stderr
    assert list(empty.iterdir()) == []  # nothing written where it ran
