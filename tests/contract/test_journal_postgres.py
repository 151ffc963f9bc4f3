"""The journal in a real PostgreSQL server: the same record as SQLite, shared by controllers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netops.journal import Journal
from tests.contract.postgres import available, postgres_server
from tests.unit.test_journal import exercise

pytestmark = pytest.mark.skipif(not available(), reason="needs root and postgresql (server)")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    pytest.importorskip("psycopg")
    with postgres_server() as u:
        yield u


def test_postgres_journal_records_like_sqlite(url: str) -> None:
    import psycopg

    j = Journal.open(url)

    def seen_by_another_connection() -> list[tuple[str]]:
        with psycopg.connect(url) as other:
            return list(other.execute("SELECT status FROM steps WHERE run_id='r1'").fetchall())

    exercise(j, seen_by_another_connection)


def test_history_cli_reads_the_shared_journal(url: str, tmp_path: Path) -> None:
    from netops.journal import RunRecord

    Journal.open(url).start_run(RunRecord(run_id="cli-seen", runbook="check-bridge-nf"))
    done = subprocess.run([sys.executable, "-m", "netops", "history", "--json"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"NETOPS_JOURNAL": url, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert '"run_id": "cli-seen"' in done.stdout


def test_bad_url_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "netops", "history"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path,
                          env={"NETOPS_JOURNAL": "postgresql://u:s3cret@/nodb?host=/nonexistent",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "cannot open the journal" in done.stderr and "s3cret" not in done.stderr
