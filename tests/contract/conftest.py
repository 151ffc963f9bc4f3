from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.sshd import SSHD, Sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if os.geteuid() != 0 or not Path(SSHD).exists() or not shutil.which("ssh-keygen"):
        pytest.skip("needs root and openssh-server (sshd) to run a real SSH server")
    server = Sshd.create(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()
