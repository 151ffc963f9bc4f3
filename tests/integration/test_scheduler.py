"""The scheduler with real `netops run` processes on lab nodes (issue 7). The scheduler's clock is
set by hand, so no test waits for a real minute to go by; the runs themselves are real: node
locks, the journal, and `--until` compared with the real clock.

Fire times are real minute boundaries of the last minute, so the window ends handed to
`netops run --until` are real times too.
"""

from __future__ import annotations

import signal
import textwrap
import time
from collections.abc import Iterator

import pytest

from netops.journal import FireRow, Journal
from netops.lab import Lab
from netops.schedule import Schedule, load_schedules
from netops.scheduler import ProcessLauncher, Scheduler
from tests.integration.helpers import Cli, lab_for

pytestmark = pytest.mark.lab
NAMES = ["chick1", "chick2", "chick3"]
LOG = "/var/tmp/scheduled.log"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from lab_for(tmp_path_factory.mktemp("sched"), NAMES, 131)


@pytest.fixture
def fresh(lab: Lab) -> Lab:
    for n in NAMES:
        lab.node_exec(n, f"rm -f {LOG}")
    return lab


RUNBOOK = """\
    name: nap
    description: each node logs that it ran, naps, logs again
    rollout: {batch_size: 1}
    params:
      nap: {type: int, default: 0}
    steps:
      - id: start
        shell: echo start >> /var/tmp/scheduled.log
      - id: snooze
        shell: sleep {{ nap }}; echo done >> /var/tmp/scheduled.log
"""


def minute() -> float:
    """The last real minute boundary: a fire time of `* * * * *` that already happened."""
    return float(int(time.time()) // 60 * 60)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def setup(cli: Cli, body: str) -> dict[str, Schedule]:
    (cli.home / "nap.yaml").write_text(textwrap.dedent(RUNBOOK))
    p = cli.home / "schedules.yaml"
    p.write_text("schedules:\n" + textwrap.indent(textwrap.dedent(body), "  "))
    return load_schedules(p)


def scheduler(cli: Cli, schedules: dict[str, Schedule], clock: Clock,
              said: list[str] | None = None, grace: float = 60) -> Scheduler:
    journal = Journal(cli.home / "journal.db")
    launcher = ProcessLauncher(cwd=cli.home, env=cli.env())
    s = Scheduler(journal, launcher, clock=clock, grace=grace,
                  report=(said.append if said is not None else lambda _: None))
    s.set_schedules(schedules)
    return s


def wait_runs(s: Scheduler, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while s.running:
        assert time.monotonic() < deadline, "the runs did not end"
        time.sleep(0.2)
        s.reap()


def node_log(lab: Lab, name: str) -> list[str]:
    return lab.node_exec(name, f"cat {LOG} 2>/dev/null || true").stdout.split()


def fires(cli: Cli, name: str) -> list[FireRow]:
    return list(reversed(Journal(cli.home / "journal.db").fires(name, limit=100)))


def test_a_due_schedule_fires_once(fresh: Lab, cli: Cli) -> None:
    f = minute()
    found = setup(cli, """\
        every-minute:
          runbook: nap.yaml
          nodes: chick1,chick2
          cron: "* * * * *"
          window: 1h
    """)
    clock = Clock(f - 1)
    s = scheduler(cli, found, clock, grace=30)  # the fire a minute before f is not due
    assert s.tick() == []
    for t in (f, f + 1, f + 20, f + 59):
        clock.t = t
        s.tick()
    wait_runs(s)
    (row,) = fires(cli, "every-minute")
    assert row.status == "fired" and row.run_status == "ok" and row.exit_code == 0
    runs = cli("history", "--json").json["runs"]
    assert [r["run_id"] for r in runs] == [row.run_id] and runs[0]["status"] == "ok"
    assert node_log(fresh, "chick1") == ["start", "done"] == node_log(fresh, "chick2")
    assert node_log(fresh, "chick3") == []
    listed = cli("schedule", "list", "--schedules", str(cli.home / "schedules.yaml"),
                 "--json").json["schedules"][0]
    assert listed["last"][0]["run_id"] == row.run_id and listed["last"][0]["run_status"] == "ok"


def test_a_window_closing_mid_run_halts_between_batches_resumably(
        fresh: Lab, cli: Cli) -> None:
    f = minute()
    window = int(time.time() + 6 - f)  # closes 6 s from now, while chick1 naps for 10 s
    found = setup(cli, f"""\
        short-window:
          runbook: nap.yaml
          nodes: all
          cron: "* * * * *"
          window: {window}s
          vars: {{nap: 10}}
    """)
    s = scheduler(cli, found, Clock(f + 1))
    assert [x.status for x in s.tick()] == ["fired"]
    wait_runs(s)
    (row,) = fires(cli, "short-window")
    assert row.run_status == "halted" and row.exit_code == 1
    assert str(row.note).startswith("maintenance window closed at ")
    assert f"before batch 2 (not run: chick2, chick3); resume with --resume {row.run_id}" \
        in str(row.note)
    assert node_log(fresh, "chick1") == ["start", "done"]
    assert node_log(fresh, "chick2") == [] == node_log(fresh, "chick3")
    report = cli("report", str(row.run_id), "--format", "json").json
    assert {h["host"]: h["status"] for h in report["hosts"]} == {
        "chick1": "changed", "chick2": "not-run", "chick3": "not-run"}
    # resumable: the rest runs, chick1 is not touched again
    resumed = cli("run", "--resume", str(row.run_id), "--var", "nap=0", "--force",
                  "--yes", "--json")
    assert resumed.rc == 0, resumed.stderr
    assert node_log(fresh, "chick1") == ["start", "done"]
    assert node_log(fresh, "chick2") == ["start", "done"] == node_log(fresh, "chick3")


def test_a_restarted_scheduler_neither_fires_twice_nor_overlaps_the_run_in_flight(
        fresh: Lab, cli: Cli) -> None:
    f = minute()
    found = setup(cli, """\
        slow:
          runbook: nap.yaml
          nodes: chick3
          cron: "* * * * *"
          window: 1h
          vars: {nap: 8}
    """)
    first = scheduler(cli, found, Clock(f))
    assert [x.status for x in first.tick()] == ["fired"]
    child = first.running["slow"].child
    del first  # the scheduler "dies"; its run goes on
    clock = Clock(f + 5)
    said: list[str] = []
    second = scheduler(cli, found, clock, said)
    second.reconcile()
    assert second.tick() == [] and second.running == {}  # restarted: no second fire
    clock.t = f + 60  # the next fire, while the first run still naps
    (refused,) = second.tick()
    assert refused.status == "refused" and "still going" in refused.note, refused.note
    assert second.running == {}
    assert child.proc.wait(timeout=60) == 0
    clock.t = f + 120  # the first run ended: its fire is settled from the journal, the next runs
    assert [x.status for x in second.tick()] == ["fired"]
    wait_runs(second)
    rows = fires(cli, "slow")
    assert [r.status for r in rows] == ["fired", "refused", "fired"]
    assert rows[0].run_status == "ok" and rows[0].run_id
    assert "no scheduler was watching" in str(rows[0].note)
    assert node_log(fresh, "chick3") == ["start", "done", "start", "done"]  # two runs, in turn
    runs = cli("history", "--json").json["runs"]
    assert sorted(r["run_id"] for r in runs) == sorted([rows[0].run_id, rows[2].run_id])


def test_runs_missed_while_down_are_recorded_not_run(fresh: Lab, cli: Cli) -> None:
    f = minute()
    found = setup(cli, """\
        report:
          runbook: nap.yaml
          nodes: chick2
          cron: "* * * * *"
          window: 1h
          dry_run: true
    """)
    first = scheduler(cli, found, Clock(f))
    first.tick()
    wait_runs(first)
    # down for three minutes; back 10 s after the fourth fire
    said: list[str] = []
    second = scheduler(cli, found, Clock(f + 190), said)
    statuses = [x.status for x in second.tick()]
    assert statuses == ["missed", "missed", "fired"]
    wait_runs(second)
    rows = fires(cli, "report")
    assert [r.status for r in rows] == ["fired", "missed", "missed", "fired"]
    assert [r.fire_time for r in rows] == [f, f + 60, f + 120, f + 180]
    assert rows[1].note == "nobody fired it on time (2m10s late)"
    assert rows[1].run_id is None and rows[2].run_id is None
    assert any("missed the fire at" in line for line in said)
    runs = cli("history", "--json").json["runs"]
    assert len(runs) == 2 and all(r["dry_run"] for r in runs)  # the missed ones never ran
    assert node_log(fresh, "chick2") == []  # dry runs


def test_scheduler_once_and_sigterm(fresh: Lab, cli: Cli) -> None:
    setup(cli, """\
        report:
          runbook: nap.yaml
          nodes: chick1
          cron: "* * * * *"
          window: 1h
          dry_run: true
    """)
    # --once: fires what is due (the last minute's fire is within --grace), waits, exits
    once = cli("scheduler", "--once", "--grace", "2m", "--schedules",
               str(cli.home / "schedules.yaml"))
    assert once.rc == 0, once.stderr
    assert "report: fired for " in once.stderr and "ended: ok" in once.stderr
    setup(cli, """\
        slow:
          runbook: nap.yaml
          nodes: chick1,chick2
          cron: "* * * * *"
          window: 1h
          vars: {nap: 5}
    """)
    proc = cli.popen("scheduler", "--grace", "2m", "--schedules",
                     str(cli.home / "schedules.yaml"))
    deadline = time.monotonic() + 60
    while "start" not in node_log(fresh, "chick1"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM: no new fires; stopping" in err and "interrupting run" in err
    assert "scheduler stopped" in err and "netops run --resume" in err
    (row,) = [r for r in fires(cli, "slow") if r.status == "fired"]  # + a superseded one
    assert row.run_status == "interrupted" and row.exit_code == 130
    # the step in flight finished, chick2 was not started, the lock was released: resumable
    assert node_log(fresh, "chick1") == ["start", "done"] and node_log(fresh, "chick2") == []
    assert fresh.node_exec("chick1", "test -e /var/lib/netops/lock", check=False).returncode
    resumed = cli("run", "--resume", str(row.run_id), "--var", "nap=0", "--force",
                  "--yes", "--json")
    assert resumed.rc == 0, resumed.stderr
    assert resumed.statuses() == {"chick2": "changed"}
