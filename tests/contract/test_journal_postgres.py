"""The journal in a real PostgreSQL server: the same record as SQLite, shared by controllers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netops.errors import JournalError
from netops.journal import Journal, RunRecord, StepRow
from tests.contract.postgres import available, postgres_server
from tests.unit.test_journal import DEAD_PID, exercise

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


def test_postgres_takes_values_as_parameters_and_reads_a_chain(url: str) -> None:
    """Values with `%`, `?` and quotes travel as parameters (psycopg's placeholders are the
    dialect's, never a rewrite of the text); the resume state of a chain reads as in SQLite."""
    j = Journal.open(url)
    sneaky = "pg-%s-?-'); DROP TABLE runs; --"
    j.start_run(RunRecord(run_id=sneaky, runbook="x", batches=[["h1"]], pid=DEAD_PID))
    j.start_batch(sneaky, 1, ["h1"])
    j.record_step(StepRow(sneaky, "h1", 1, "s1", status="changed", note="100% ?",
                          started=time.time()))
    j.record_step(StepRow(sneaky, "h1", 2, "s2", status="running", started=time.time()))
    j.finish_run(sneaky, "halted", reason="50% done?")
    assert j.settle_unknown(sneaky) == 1
    run = j.run("pg-%s")  # a prefix, its % taken literally
    assert run is not None and run.run_id == sneaky and run.reason == "50% done?"
    assert j.run("pg-%x") is None
    state = j.resume_state(sneaky)
    assert state is not None and [r.run_id for r in state.chain.runs] == [sneaky]
    assert state.done == {"h1": frozenset({"s1"})} and state.unknown == {"h1": frozenset({"s2"})}
    assert j.steps(sneaky)[0].note == "100% ?"
    assert j.claim_fire("pg-nightly", 1.0, "fired", claimed_by="a")
    assert not j.claim_fire("pg-nightly", 1.0, "fired", claimed_by="b")
    j.update_fire("pg-nightly", 1.0, note="50%", pid=7)
    (fire,) = j.fires("pg-nightly")
    assert (fire.claimed_by, fire.note, fire.pid) == ("a", "50%", 7)


def test_a_locked_postgres_journal_fails_after_the_busy_timeout(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another session holding a lock past the busy timeout: JournalError, as with SQLite."""
    import psycopg

    from netops.journal import dialect

    monkeypatch.setattr(dialect, "BUSY_TIMEOUT", 1)
    j = Journal.open(url)
    with psycopg.connect(url) as other:
        other.execute("LOCK TABLE runs IN EXCLUSIVE MODE")  # held until `other` ends
        t = time.monotonic()
        with pytest.raises(JournalError, match="writing failed"):
            j.start_run(RunRecord(run_id="pg-locked", runbook="x"))
        assert 0.9 < time.monotonic() - t < 10
    j.start_run(RunRecord(run_id="pg-locked", runbook="x"))
    assert j.run("pg-locked") is not None


def test_history_cli_reads_the_shared_journal(url: str, tmp_path: Path) -> None:
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
