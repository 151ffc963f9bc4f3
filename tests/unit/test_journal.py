"""The journal records each event as it happens; a reader in another connection sees it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from netops.engine.events import BatchStarted, HostFinished, RunFinished, StepFinished, StepStarted
from netops.engine.result import HostResult, RunResult, RunStatus, Status, StepResult
from netops.errors import JournalError
from netops.journal import HostRow, Journal, RunRecord, Sql, StepRow
from netops.journal.observer import OUTPUT_LIMIT
from netops.timeline import markdown

DEAD_PID = 2 ** 22 + 12345  # above pid_max's default: no such process


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
    assert row is not None and row.status == "halted" and row.reason == "halted after batch 1"
    assert row.batches == (("chick1",), ("chick2",)) and row.params["token"] == "***"
    steps = j.steps("r1")
    assert [(s.step_id, s.status, s.seq) for s in steps] == [
        ("runtime", "changed", 1), ("fix", "failed", 2), ("verify", "not-run", 3)]
    first = steps[0]
    assert first.changed is True and first.rc == 0 and first.duration_s == 0.1
    assert first.command is not None and "hunter2" not in first.command
    assert "hunter2" not in first.stdout and len(first.stdout) < OUTPUT_LIMIT + 100
    assert {h.host: h.status for h in j.hosts("r1")} == {"chick1": "failed",
                                                         "chick2": "not-run"}
    assert [s.step_id for s in j.steps("r1", "chick1")] == ["runtime", "fix", "verify"]
    assert [r.run_id for r in j.runs(node="chick2")] == ["r1"]
    assert j.runs(runbook="other") == [] and j.runs(node="chick9") == []
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
    assert row is not None and row.status == "crashed"
    assert Journal(db).run("de") == row  # a unique prefix is enough
    assert Journal(db).run("d%") is None  # taken literally, not as a pattern


def test_every_report_lists_the_same_findings(tmp_path: Path) -> None:
    """A step left in flight (unknown outcome) is a finding in the Markdown timeline, the
    HTML page and the notification alike; an ok step is in none of them."""
    from netops.html_report import run_html
    from netops.notify import event_from_journal

    j = Journal(tmp_path / "j.db")
    j.start_run(record())
    j.record_step(StepRow("r1", "n1", 1, "probe", status="ok", started=time.time()))
    j.record_step(StepRow("r1", "n1", 2, "restart", status="unknown", note="in flight",
                          started=time.time()))
    run = j.run("r1")
    assert run is not None
    hosts, steps = j.hosts("r1"), j.steps("r1")
    found = markdown(run, hosts, steps).split("## What was found")[1].split("##")[0]
    assert "`restart` (unknown)" in found and "probe" not in found
    page = run_html(run, hosts, steps).split('id="findings"')[1].split("</ul>")[0]
    assert "restart" in page and "probe" not in page
    event = event_from_journal(j, "r1")
    assert event is not None and [f["step"] for f in event.findings] == ["restart"]


def test_statements_are_written_once_and_rendered_per_driver() -> None:
    """Each dialect renders `{name}` fields as its driver's placeholders; literal text keeps
    what it says (a `%` is escaped for psycopg, a `?` is not a placeholder anywhere)."""
    from netops.journal.dialect import PostgresDialect, Sql, SqliteDialect

    sql = Sql("SELECT * FROM runs WHERE note LIKE '50%?' AND run_id={run_id} OR pid={pid}")
    assert sql.names == {"run_id", "pid"}
    sqlite = SqliteDialect.__new__(SqliteDialect)
    postgres = PostgresDialect.__new__(PostgresDialect)
    for d in (sqlite, postgres):
        d._rendered = {}
    assert sqlite.render(sql) == ("SELECT * FROM runs WHERE note LIKE '50%?' AND "
                                  "run_id=:run_id OR pid=:pid")
    assert postgres.render(sql) == ("SELECT * FROM runs WHERE note LIKE '50%%?' AND "
                                    "run_id=%(run_id)s OR pid=%(pid)s")
    with pytest.raises(ValueError, match="plain name"):
        Sql("SELECT {x!r}")


def test_values_travel_as_parameters_never_as_text(tmp_path: Path) -> None:
    """A value that looks like SQL (or like a placeholder) is stored as it is."""
    j = Journal(tmp_path / "j.db")
    sneaky = "x'); DROP TABLE runs; -- ? %s :run_id {run_id}"
    j.start_run(_record_of(sneaky))
    j.finish_run(sneaky, "failed", reason=sneaky)
    row = j.run(sneaky)
    assert row is not None and row.run_id == sneaky and row.reason == sneaky
    with pytest.raises(ValueError, match="takes"), j.transaction() as db:
        db.execute(Sql("SELECT {a}"), {"b": 1})


def _record_of(run_id: str) -> RunRecord:
    return RunRecord(run_id=run_id, runbook="x")


def test_a_locked_journal_fails_with_journal_error_after_the_busy_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer holding the lock: the write waits the busy timeout, then JournalError
    (never sqlite3's own exception)."""
    from netops.journal import dialect

    monkeypatch.setattr(dialect, "BUSY_TIMEOUT", 0.2)  # 30 s, shortened for the test
    db = tmp_path / "j.db"
    j = Journal(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(JournalError, match="writing failed: database is locked"):
            j.check()
        with pytest.raises(JournalError):
            j.start_run(_record_of("r1"))
        assert j.runs() == []  # a reader is not blocked by the writer (WAL)
    finally:
        holder.execute("ROLLBACK")
    j.check()
    j.start_run(_record_of("r1"))
    assert [r.run_id for r in j.runs()] == ["r1"]


def test_the_resume_state_of_a_chain_reads_all_its_runs(tmp_path: Path) -> None:
    """`Journal.resume_state`: per host, the latest status, the steps done by any run of the
    chain and those of unknown outcome that none completed."""
    j = Journal(tmp_path / "j.db")
    j.start_run(RunRecord(run_id="a", runbook="x", batches=[["h1", "h2"]], pid=DEAD_PID))
    j.start_batch("a", 1, ["h1", "h2"])
    for seq, (step, status) in enumerate((("s1", "changed"), ("s2", "unknown")), 1):
        j.record_step(StepRow("a", "h1", seq, step, status=status, started=time.time()))
    j.finish_host("a", "h1", "failed")
    j.finish_run("a", "halted", hosts=[HostRow("a", "h2", 1, "not-run")])
    j.start_run(RunRecord(run_id="b", runbook="x", resumed_from="a", pid=DEAD_PID,
                          started=time.time() + 1))
    j.start_batch("b", 1, ["h1"])
    j.record_step(StepRow("b", "h1", 1, "s2", status="changed", started=time.time()))
    j.record_step(StepRow("b", "h1", 2, "s3", status="running", started=time.time()))
    assert j.settle_unknown("b") == 1
    for named in ("a", "b"):
        state = j.resume_state(named)
        assert state is not None and state.chain.named.run_id == named
        assert [r.run_id for r in state.chain.runs] == ["a", "b"]
        assert state.chain.root.run_id == "a" and state.chain.latest.status == "crashed"
        assert state.host_status == {"h1": "unknown", "h2": "not-run"}
        assert state.done == {"h1": frozenset({"s1", "s2"})}
        assert state.unknown == {"h1": frozenset({"s3"})}
    assert j.resume_state("zz") is None and j.chain("zz") is None


def test_the_observer_writes_only_through_public_methods() -> None:
    """No private journal method is called from the observer (issue 16)."""
    import ast
    import inspect

    import netops.journal.observer as observer

    tree = ast.parse(inspect.getsource(observer))
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Attribute) and n.value.attr == "journal"}
    assert used and not {u for u in used if u.startswith("_")}, used


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(),
                    reason="a private tmpfs needs root and unshare")
def test_a_full_or_read_only_journal_disk_is_exit_2_without_a_traceback(
        tmp_path: Path) -> None:
    """The journal on a full, then a read-only, filesystem (a 256k tmpfs in a private mount
    namespace): `netops exec` fails before touching a host, exit 2, one error line, no
    traceback; reading the history of the read-only journal still works."""
    (tmp_path / "inv.yaml").write_text("all:\n  hosts:\n    n1: {ansible_host: 127.0.0.1, "
                                       "ansible_port: 1}\n")
    disk = tmp_path / "disk"
    disk.mkdir()
    netops = f"{sys.executable} -m netops -i {tmp_path}/inv.yaml --journal {disk}/j.db"
    script = f"""
    mount -t tmpfs -o size=256k tmpfs {disk} || exit 99
    {netops} history >/dev/null 2>&1
    dd if=/dev/zero of={disk}/fill bs=4k 2>/dev/null
    {netops} exec -n n1 -- true; echo "full=$?"
    rm {disk}/fill && mount -o remount,ro {disk}
    {netops} exec -n n1 -- true; echo "ro=$?"
    {netops} history; echo "history=$?"
    """
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                       timeout=120)
    if r.returncode == 99:
        pytest.skip("cannot mount a tmpfs here")
    assert "full=2" in r.stdout and "ro=2" in r.stdout and "history=0" in r.stdout, r
    assert "database or disk is full" in r.stderr and "readonly database" in r.stderr
    assert r.stderr.count("error: journal ") == 2 and "Traceback" not in r.stderr
