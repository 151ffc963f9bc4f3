"""The journal records each event as it happens; a reader in another connection sees it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from netops.engine.events import BatchStarted, HostFinished, RunFinished, StepFinished, StepStarted
from netops.engine.result import HostResult, RunResult, RunStatus, Status, StepResult
from netops.journal import OUTPUT_LIMIT, Journal, RunRecord
from netops.timeline import markdown


def record(run_id: str = "r1", **kw: object) -> RunRecord:
    return RunRecord(run_id=run_id, runbook="check-ip-forward", nodes="chick1,chick2",
                     params={"persist_file": "/etc/sysctl.d/90.conf", "token": "***"},
                     batches=[["chick1"], ["chick2"]], **kw)  # type: ignore[arg-type]


def test_events_are_committed_as_they_happen(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")

    def seen_by_another_connection() -> list[tuple[str]]:
        return sqlite3.connect(tmp_path / "j.db").execute("SELECT status FROM steps").fetchall()

    exercise(j, seen_by_another_connection)


def test_an_older_journal_gets_the_columns_added_since(tmp_path: Path) -> None:
    """A journal written before steps had a `finding` column still takes new runs."""
    old = sqlite3.connect(tmp_path / "j.db")
    old.execute("CREATE TABLE steps (run_id TEXT NOT NULL, host TEXT NOT NULL, "
                "seq INTEGER NOT NULL, step_id TEXT NOT NULL, name TEXT, status TEXT NOT NULL, "
                "changed INTEGER, rc INTEGER, command TEXT, stdout TEXT, stderr TEXT, note TEXT, "
                "diff TEXT, started DOUBLE PRECISION NOT NULL, duration_s DOUBLE PRECISION, "
                "PRIMARY KEY (run_id, host, seq))")
    old.commit()
    old.close()
    j = Journal(tmp_path / "j.db")
    exercise(j, lambda: sqlite3.connect(tmp_path / "j.db").execute(
        "SELECT status FROM steps").fetchall())
    Journal(tmp_path / "j.db")  # opening again adds nothing twice


def exercise(j: Journal, steps_seen_elsewhere: Callable[[], list[tuple[str]]]) -> None:
    """One halted run written event by event, then read back; shared with the PostgreSQL test."""
    j.start_run(record())
    obs = j.observer("r1", frozenset({"hunter2"}))
    obs.on_event(BatchStarted(1, ("chick1",)))
    obs.on_event(StepStarted("chick1", "runtime", "ip_forward is 1"))
    # another connection (another process) already sees the running step
    assert steps_seen_elsewhere() == [("running",)]
    step = StepResult("runtime", "ip_forward is 1", Status.CHANGED, changed=True, rc=0,
                      command="echo hunter2", stdout="x" * (OUTPUT_LIMIT + 10) + "hunter2",
                      stderr="", duration_s=0.1)
    obs.on_event(StepFinished("chick1", step))
    failed = StepResult("fix", "fix", Status.FAILED, note="rc 1")
    not_run = StepResult("verify", "verify", Status.NOT_RUN, note="not run: fix failed")
    obs.on_event(StepStarted("chick1", "fix", "fix"))
    obs.on_event(StepFinished("chick1", failed))
    host = HostResult("chick1", 1, Status.FAILED, (step, failed, not_run))
    obs.on_event(HostFinished(host))
    run = RunResult("r1", "check-ip-forward", False, RunStatus.HALTED,
                    (("chick1",), ("chick2",)),
                    {"chick1": host, "chick2": HostResult("chick2", 2, Status.NOT_RUN)},
                    reason="halted after batch 1")
    obs.on_event(RunFinished(run))

    row = j.run("r1")
    assert row is not None and row["status"] == "halted" and row["reason"]
    steps = j.steps("r1")
    assert [(s["step_id"], s["status"]) for s in steps] == [
        ("runtime", "changed"), ("fix", "failed"), ("verify", "not-run")]
    assert "hunter2" not in steps[0]["command"] and "hunter2" not in steps[0]["stdout"]
    assert len(steps[0]["stdout"]) < OUTPUT_LIMIT + 100
    assert {h["host"]: h["status"] for h in j.hosts("r1")} == {"chick1": "failed",
                                                               "chick2": "not-run"}
    assert [r["run_id"] for r in j.runs(node="chick2")] == ["r1"]
    assert j.runs(runbook="other") == []
    md = markdown(row, j.hosts("r1"), steps)
    assert "## What was found" in md and "**chick1** `fix` (failed)" in md
    assert "| chick2 | 2 | not-run |" in md and "halted after batch 1" in md


def test_a_killed_run_reads_as_crashed(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    code = (f"from netops.journal import Journal, RunRecord\n"
            f"j = Journal(__import__('pathlib').Path({str(db)!r}))\n"
            f"j.start_run(RunRecord(run_id='dead', runbook='x'))\n"
            f"import os; os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code], check=False, env={**os.environ})
    row = Journal(db).run("dead")
    assert row is not None and row["status"] == "crashed"
    assert Journal(db).run("de") == row  # a unique prefix is enough
