"""Fixtures shared by the lab test modules (each module defines its own `lab`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netops.lab import Lab
from tests.integration.helpers import Cli


@pytest.fixture
def cli(lab: Lab, tmp_path: Path) -> Cli:
    """The real `netops` CLI against this module's lab, with its own journal and state."""
    return Cli(lab, tmp_path)
