"""A throw-away PostgreSQL server on a Unix socket, for the shared-journal tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def server_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a postgresql:// URL; the server and its files are gone afterwards."""
    bindir = server_bin()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="netops-pg-"))
    root.chmod(0o755)  # the postgres user must reach it
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    shutil.chown(root, "postgres")
    shutil.chown(sock, "postgres")

    def as_postgres(*args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       capture_output=True, timeout=60, cwd=root)

    try:
        as_postgres(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync")
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                    "-o", f"-k {sock} -c listen_addresses='' -p 5433 -c fsync=off", "start")
        yield f"postgresql://postgres@/postgres?host={sock}&port=5433"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(bindir / "pg_ctl"), "-D",
                            str(data), "-m", "immediate", "-w", "stop"], capture_output=True,
                           timeout=60, cwd=root, check=False)
        shutil.rmtree(root, ignore_errors=True)


def available() -> bool:
    return os.geteuid() == 0 and server_bin() is not None and shutil.which("runuser") is not None
