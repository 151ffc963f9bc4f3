"""Scheduled maintenance without a lab or a real minute going by: cron maths, windows,
schedules.yaml validation, the engine's deadline, and the scheduler driven by a hand-set clock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC as _UTC
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from netops.engine.events import Recorder
from netops.engine.execute import World, execute
from netops.engine.prepare import Overrides, build_plan
from netops.engine.result import RunStatus, Status
from netops.errors import LoadError, UserError
from netops.inventory.load import load_inventory
from netops.journal import Journal
from netops.runbook.load import load_runbook
from netops.schedule import (
    Cron,
    CronError,
    Schedule,
    check_windows,
    fmt_time,
    load_schedules,
    parse_until,
    parse_window,
)
from netops.scheduler import MISSED_LIMIT, Outcome, Scheduler, run_args
from netops.transport.local import LocalTransport

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz: ZoneInfo = UTC) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def upcoming(expr: str, start: str, n: int, tz: ZoneInfo = UTC) -> list[str]:
    return [datetime.fromtimestamp(t, tz).strftime("%a %Y-%m-%d %H:%M")
            for t in Cron.parse(expr).upcoming(at(start, tz), tz, n)]


# -- cron ---------------------------------------------------------------------------------------
def test_fields_ranges_steps_lists_and_names() -> None:
    assert upcoming("*/20 9-10 * * MON-FRI", "2026-06-19 10:30", 3) == [
        "Fri 2026-06-19 10:40", "Mon 2026-06-22 09:00", "Mon 2026-06-22 09:20"]
    assert upcoming("5/30 0 1,15 JAN,jul *", "2026-06-19 00:00", 3) == [
        "Wed 2026-07-01 00:05", "Wed 2026-07-01 00:35", "Wed 2026-07-15 00:05"]
    assert upcoming("0 0 * * 7", "2026-06-19 00:00", 1) == ["Sun 2026-06-21 00:00"]
    assert upcoming("0 3 * * 5-7", "2026-06-19 04:00", 2) == ["Sat 2026-06-20 03:00",
                                                              "Sun 2026-06-21 03:00"]


def test_aliases() -> None:
    assert upcoming("@daily", "2026-06-19 12:00", 1) == ["Sat 2026-06-20 00:00"]
    assert upcoming("@weekly", "2026-06-19 12:00", 1) == ["Sun 2026-06-21 00:00"]
    assert upcoming("@monthly", "2026-06-19 12:00", 1) == ["Wed 2026-07-01 00:00"]
    assert upcoming("@yearly", "2026-06-19 12:00", 1) == ["Fri 2027-01-01 00:00"]
    assert upcoming("@hourly", "2026-06-19 12:00", 1) == ["Fri 2026-06-19 13:00"]


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # the 13th OR any Friday (cron's rule), not Friday the 13th
    assert upcoming("0 0 13 * FRI", "2026-06-01 00:00", 4) == [
        "Fri 2026-06-05 00:00", "Fri 2026-06-12 00:00", "Sat 2026-06-13 00:00",
        "Fri 2026-06-19 00:00"]
    # a field starting with * is not a restriction: the 1st..31st every other day AND Monday
    assert upcoming("0 0 */2 * MON", "2026-06-01 00:00", 2) == [
        "Mon 2026-06-15 00:00", "Mon 2026-06-29 00:00"]


def test_leap_day_is_found_years_ahead() -> None:
    assert upcoming("0 0 29 2 *", "2026-06-19 00:00", 1) == ["Tue 2028-02-29 00:00"]


@pytest.mark.parametrize("expr,words", [
    ("* * * *", "expected 5 fields"),
    ("60 * * * *", "minute: '60' is not valid"),
    ("* * * FOO *", "month: 'FOO' is not valid"),
    ("* * * * 1-8", "day-of-week: '1-8' is not valid"),
    ("0 0 * * FRI-MON", "day-of-week: 'FRI-MON' is not valid"),
    ("*/0 * * * *", "minute: '\\*/0' is not valid"),
    ("0 0 30 2 *", "never fires"),
    ("@reboot", "unknown alias"),
])
def test_bad_expressions_say_which_field(expr: str, words: str) -> None:
    with pytest.raises(CronError, match=words):
        Cron.parse(expr)


def test_a_local_time_skipped_by_dst_fires_once_after_the_jump() -> None:
    # Europe/Berlin jumps 02:00 -> 03:00 on 2026-03-29
    # (at the jump, as Debian's cron runs a job whose time was skipped)
    assert upcoming("30 2 * * *", "2026-03-28 12:00", 3, BERLIN) == [
        "Sun 2026-03-29 03:00", "Mon 2026-03-30 02:30", "Tue 2026-03-31 02:30"]
    # a job at 02:30 and 03:30 fires twice that day, each once
    fires = Cron.parse("30 2,3 * * *").between(at("2026-03-29 00:00", BERLIN),
                                               at("2026-03-29 12:00", BERLIN), BERLIN)
    assert [fmt_time(t, BERLIN) for t in fires] == ["2026-03-29 03:00 CEST",
                                                     "2026-03-29 03:30 CEST"]


def test_a_local_time_repeated_by_dst_fires_once() -> None:
    # Europe/Berlin goes back 03:00 -> 02:00 on 2026-10-25: 02:30 happens twice
    fires = Cron.parse("30 2 * * *").between(at("2026-10-24 12:00", BERLIN),
                                             at("2026-10-26 12:00", BERLIN), BERLIN)
    assert [fmt_time(t, BERLIN) for t in fires] == ["2026-10-25 02:30 CEST",
                                                     "2026-10-26 02:30 CET"]
    assert fires[1] - fires[0] == 25 * 3600  # that day is 25 hours long


def test_the_same_expression_in_two_zones() -> None:
    c = Cron.parse("0 2 * * *")
    start = at("2026-06-19 12:00")
    assert c.next_after(start, UTC) == at("2026-06-20 02:00")
    assert c.next_after(start, BERLIN) == at("2026-06-20 00:00")  # 02:00 CEST


def test_between_is_start_exclusive_end_inclusive() -> None:
    c = Cron.parse("*/10 * * * *")
    assert c.between(at("2026-06-19 10:00"), at("2026-06-19 10:30"), UTC) == [
        at("2026-06-19 10:10"), at("2026-06-19 10:20"), at("2026-06-19 10:30")]


# -- windows and --until --------------------------------------------------------------------
def test_maintenance_window_open_and_next() -> None:
    (w,) = parse_window({"cron": "0 2 * * SAT", "duration": "4h", "timezone": "UTC"}, "x")
    assert w.open_at(at("2026-06-20 05:59")) == (at("2026-06-20 02:00"), at("2026-06-20 06:00"))
    assert w.open_at(at("2026-06-20 06:00")) is None  # [open, close)
    assert w.next_open(at("2026-06-20 06:00")) == at("2026-06-27 02:00")


def test_hosts_outside_their_window_and_the_earliest_close(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(textwrap.dedent("""\
        all:
          children:
            workers:
              hosts: {w1: {}, w2: {}}
              vars:
                netops_maintenance_window: {cron: "0 2 * * *", duration: 4h}
            etcd:
              hosts: {e1: {}}
              vars:
                netops_maintenance_window:
                  - {cron: "0 3 * * *", duration: 2h}
                  - {cron: "0 12 * * SUN", duration: 1h, timezone: Europe/Berlin}
            free:
              hosts: {f1: {}}
    """))
    hosts = load_inventory(inv).select(None)
    night = check_windows(hosts, at("2026-06-19 03:30"))
    assert night.outside == {} and night.closes == at("2026-06-19 05:00")
    day = check_windows(hosts, at("2026-06-19 10:00"))
    assert sorted(day.outside) == ["e1", "w1", "w2"]
    assert "next opens" in day.outside["w1"] and day.closes is None


def test_bad_window_variable_is_a_user_error() -> None:
    with pytest.raises(UserError, match="must be a mapping with cron, duration"):
        parse_window("Sat 02:00-06:00", "host w1")
    with pytest.raises(UserError, match="cron '0 2 \\* \\*'"):
        parse_window({"cron": "0 2 * *", "duration": "4h"}, "host w1")


def test_until_takes_a_clock_time_or_an_iso_time() -> None:
    now = datetime(2026, 6, 19, 23, 0).timestamp()  # local time
    assert parse_until("06:00", now) == datetime(2026, 6, 20, 6, 0).timestamp()
    assert parse_until("23:30", now) == datetime(2026, 6, 19, 23, 30).timestamp()
    assert parse_until("2026-06-20T01:00+00:00", now) == at("2026-06-20 01:00")
    with pytest.raises(UserError, match="already past"):
        parse_until("2026-06-19T22:00", now)
    with pytest.raises(UserError, match="expected HH:MM"):
        parse_until("tomorrow", now)


# -- the engine stops starting batches at the deadline --------------------------------------------
def test_deadline_halts_between_batches_resumably(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  hosts: {n1: {}, n2: {}, n3: {}, n4: {}}\n")
    rb = tmp_path / "mark.yaml"
    rb.write_text(f"name: mark\ndescription: d\nsteps:\n  - shell: echo {{{{ host.name }}}} "
                  f">> {tmp_path}/log\n")
    inventory, book = load_inventory(inv), load_runbook(rb)
    plan = build_plan(book, inventory, inventory.select(None), [],
                      Overrides(batch_size="1", deadline=1150.0), dry_run=False)
    log = tmp_path / "log"

    def wall() -> float:  # each finished batch takes "100 seconds"
        return 1000.0 + 100 * (len(log.read_text().split()) if log.exists() else 0)

    rec = Recorder()
    run = execute(plan, World(connect=lambda h: LocalTransport(h.name),
                              controller=LocalTransport, observer=rec, now=wall))
    assert log.read_text().split() == ["n1", "n2"]
    assert run.status is RunStatus.HALTED
    assert {h: r.status for h, r in run.hosts.items()} == {
        "n1": Status.CHANGED, "n2": Status.CHANGED, "n3": Status.NOT_RUN, "n4": Status.NOT_RUN}
    assert run.reason.startswith("maintenance window closed at ")
    assert f"before batch 3 (not run: n3, n4); resume with --resume {plan.run_id}" in run.reason


def test_deadline_already_past_still_runs_the_first_batch(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  hosts: {n1: {}, n2: {}}\n")
    rb = tmp_path / "noop.yaml"
    rb.write_text("name: noop\ndescription: d\nsteps:\n  - check: 'true'\n")
    inventory = load_inventory(inv)
    plan = build_plan(load_runbook(rb), inventory, inventory.select(None), [],
                      Overrides(batch_size="1", deadline=10.0), dry_run=False)
    run = execute(plan, World(connect=lambda h: LocalTransport(h.name),
                              controller=LocalTransport, observer=Recorder(), now=lambda: 20.0))
    assert [r.status for r in run.hosts.values()] == [Status.OK, Status.NOT_RUN]


# -- schedules.yaml -----------------------------------------------------------------------------
GOOD = """\
timezone: Europe/Berlin
schedules:
  nightly-report:
    description: what would change, every night
    runbook: check-ip-forward
    nodes: all
    cron: "0 2 * * *"
    window: 1h
    dry_run: true
  weekly-fix:
    runbook: check-ip-forward
    nodes: workers
    cron: "30 3 * * SUN"
    timezone: UTC
    window: 2h30m
    catch_up: true
    vars: {persist_file: /etc/sysctl.d/99-x.conf, flags: [a, b], on: yes}
    rollout: {batch_size: [1, "50%"], max_fail: 1, pause: 30s}
"""


def test_schedules_load(tmp_path: Path) -> None:
    p = tmp_path / "schedules.yaml"
    p.write_text(GOOD)
    s = load_schedules(p)
    assert list(s) == ["nightly-report", "weekly-fix"]
    n, w = s["nightly-report"], s["weekly-fix"]
    assert n.tz.key == "Europe/Berlin" and n.dry_run and n.window == 3600 and not n.catch_up
    assert w.tz.key == "UTC" and w.window == 9000 and w.catch_up
    assert w.vars == ("persist_file=/etc/sysctl.d/99-x.conf", "flags=a,b", "on=true")
    assert (w.batch_size, w.max_fail, w.pause) == ("1,50%", "1", "30s")
    assert str(w.spans["nodes"]).endswith("schedules.yaml:12:12")
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    assert load_schedules(tmp_path / "empty.yaml") == {}
    with pytest.raises(UserError, match="cannot read schedules"):
        load_schedules(tmp_path / "missing.yaml")


@pytest.mark.parametrize("edit,where,words", [
    (("    window: 1h\n    dry_run", "    window: 0s\n    dry_run"), "8:13",
     "window must be longer than 0s"),
    (('cron: "0 2 * * *"', 'cron: "0 25 * * *"'), "7:11", "hour: '25' is not valid"),
    (("timezone: UTC", "timezone: Europe/Berln"), "14:15", "unknown time zone"),
    (("    dry_run: true", "    dry_run: maybe"), "9:14", "must be true or false"),
    (("    catch_up: true", "    catchup: true"), "16:5", "did you mean 'catch_up'"),
    (("pause: 30s", "pause: ask"), "18:59", "nobody to ask"),
    (("max_fail: 1", "max_fail: lots"), "18:49", "max-fail"),
    (("  weekly-fix:", "  Weekly Fix:"), "10:3", "must be lower-case"),
    (("    nodes: workers\n", ""), "11:5", "missing required field 'nodes'"),
    (("    window: 1h\n", "    window: 1h\n    window: 2h\n"), "9:5",
     "duplicate key 'window' (first at line 8)"),
])
def test_schedule_errors_name_file_line_col(tmp_path: Path, edit: tuple[str, str], where: str,
                                            words: str) -> None:
    p = tmp_path / "schedules.yaml"
    p.write_text(GOOD.replace(*edit, 1))
    with pytest.raises(LoadError) as e:
        load_schedules(p)
    assert f"schedules.yaml:{where}: " in str(e.value) and words in str(e.value), str(e.value)


# -- the scheduler, driven by a hand-set clock and a fake launcher -------------------------------
class FakeChild:
    """A run that goes on until the test ends it (or the scheduler interrupts it)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.code: int | None = None
        self.interrupts = 0
        self.status = "ok"

    def poll(self) -> int | None:
        return self.code

    def interrupt(self) -> None:
        self.interrupts += 1
        self.code, self.status = 130, "interrupted"

    def outcome(self) -> Outcome:
        assert self.code is not None
        return Outcome(self.code, f"run{self.pid}", self.status,
                       "halted: window closed" if self.status == "halted" else "")


class FakeLauncher:
    def __init__(self, pid: int | None = None) -> None:
        self.started: list[tuple[str, float, FakeChild]] = []
        self.pid = pid or _dead_pid()
        """The pid the journal records: a live one reads as "still running" after a restart."""

    def start(self, schedule: Schedule, window_end: float) -> FakeChild:
        child = FakeChild(self.pid)
        self.started.append((schedule.name, window_end, child))
        return child


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class Clock:
    def __init__(self, text: str) -> None:
        self.t = at(text)

    def set(self, text: str) -> None:
        self.t = at(text)

    def __call__(self) -> float:
        return self.t


def schedules_of(tmp: Path, body: str) -> dict[str, Schedule]:
    p = tmp / "schedules.yaml"
    p.write_text("timezone: UTC\nschedules:\n" + textwrap.indent(textwrap.dedent(body), "  "))
    return load_schedules(p)


NIGHTLY = """\
nightly:
  runbook: check-ip-forward
  nodes: all
  cron: "0 2 * * *"
  window: 1h
"""


def scheduler(tmp: Path, clock: Clock, body: str = NIGHTLY,
              launcher: FakeLauncher | None = None) -> tuple[Scheduler, FakeLauncher]:
    launcher = launcher or FakeLauncher()
    s = Scheduler(Journal(tmp / "journal.db"), launcher, clock=clock, grace=60)
    s.set_schedules(schedules_of(tmp, body))
    return s, launcher


def statuses(tmp: Path, name: str = "nightly") -> list[tuple[str, str]]:
    rows = Journal(tmp / "journal.db").fires(name, limit=1000)
    return [(datetime.fromtimestamp(r.fire_time, _UTC).strftime("%m-%d %H:%M"), r.status)
            for r in reversed(rows)]


def test_a_due_schedule_fires_once(tmp_path: Path) -> None:
    clock = Clock("2026-06-19 01:59:30")
    s, launcher = scheduler(tmp_path, clock)
    assert s.tick() == []
    clock.set("2026-06-19 02:00:00")
    assert [f.status for f in s.tick()] == ["fired"]
    for later in ("02:00:01", "02:00:30", "02:59:00"):
        clock.set(f"2026-06-19 {later}")
        assert s.tick() == []
    assert [(n, w) for n, w, _ in launcher.started] == [("nightly", at("2026-06-19 03:00"))]
    row = Journal(tmp_path / "journal.db").fires("nightly")[0]
    assert row.pid == launcher.pid and row.window_end == at("2026-06-19 03:00")
    assert s.next_fire() == at("2026-06-20 02:00")


def test_a_restarted_scheduler_does_not_fire_again(tmp_path: Path) -> None:
    clock = Clock("2026-06-19 02:00:05")
    first, _ = scheduler(tmp_path, clock)
    assert [f.status for f in first.tick()] == ["fired"]
    first.running["nightly"].child.code = 0  # the run ended; the scheduler dies before reaping
    # restarted 20 seconds later: the fire is in the journal, nothing is fired twice
    clock.set("2026-06-19 02:00:25")
    second, again = scheduler(tmp_path, clock)
    second.reconcile()
    assert second.tick() == [] and again.started == []
    # and two schedulers ticking at the same moment: only one of them fires
    clock.set("2026-06-20 02:00:00")
    a, la = scheduler(tmp_path, clock)
    b, lb = scheduler(tmp_path, clock)
    assert len(a.tick() + b.tick()) == 1 and len(la.started) + len(lb.started) == 1
    assert statuses(tmp_path) == [("06-19 02:00", "fired"), ("06-20 02:00", "fired")]


def test_fires_missed_while_down_are_recorded_not_run(tmp_path: Path) -> None:
    clock = Clock("2026-06-19 02:00:00")
    s, launcher = scheduler(tmp_path, clock)
    s.tick()
    launcher.started[0][2].code = 0
    s.reap()
    # down from the 19th to the 22nd, back 30 s after that night's fire: on time for it only
    clock.set("2026-06-22 02:00:30")
    s2, l2 = scheduler(tmp_path, clock)
    fired = s2.tick()
    assert [(f.status, f.note) for f in fired][:2] == [
        ("missed", "nobody fired it on time (2d30s late)"),
        ("missed", "nobody fired it on time (1d30s late)")]
    assert statuses(tmp_path) == [("06-19 02:00", "fired"), ("06-20 02:00", "missed"),
                                  ("06-21 02:00", "missed"), ("06-22 02:00", "fired")]
    assert len(l2.started) == 1
    # back 10 minutes late: that fire is missed too (no catch_up): never started late
    l2.started[0][2].code = 0
    clock.set("2026-06-23 02:10:00")
    s3, l3 = scheduler(tmp_path, clock)
    assert [f.status for f in s3.tick()] == ["missed"] and l3.started == []


def test_catch_up_fires_the_latest_missed_run_inside_its_window(tmp_path: Path) -> None:
    body = NIGHTLY + "  catch_up: true\n"
    clock = Clock("2026-06-19 02:00:00")
    s, launcher = scheduler(tmp_path, clock, body)
    s.tick()
    launcher.started[0][2].code = 0
    clock.set("2026-06-21 02:20:00")  # the 20th missed; the 21st's window is open until 03:00
    s2, l2 = scheduler(tmp_path, clock, body)
    fires = s2.tick()
    assert [(f.status, f.note) for f in fires] == [
        ("missed", "nobody fired it on time (1d20m late); its window had closed"),
        ("fired", "20m late, caught up")]
    assert [(n, w) for n, w, _ in l2.started] == [("nightly", at("2026-06-21 03:00"))]
    l2.started[0][2].code = 0
    clock.set("2026-06-22 03:00:00")  # the window just closed: missed after all
    s3, l3 = scheduler(tmp_path, clock, body)
    assert [f.status for f in s3.tick()] == ["missed"] and l3.started == []


def test_an_overlapping_fire_is_refused_even_across_a_restart(tmp_path: Path) -> None:
    body = NIGHTLY.replace('"0 2 * * *"', '"*/10 * * * *"')
    clock = Clock("2026-06-19 02:00:00")
    s, _ = scheduler(tmp_path, clock, body, FakeLauncher(pid=os.getpid()))  # alive
    assert [f.status for f in s.tick()] == ["fired"]
    clock.set("2026-06-19 02:10:00")
    (refused,) = s.tick()
    assert refused.status == "refused"
    assert refused.note == (f"the run fired at 2026-06-19 02:00 UTC (pid {os.getpid()}) is "
                            "still going")
    # the scheduler restarts while the run goes on (its pid is alive): still refused
    clock.set("2026-06-19 02:20:00")
    s2, l2 = scheduler(tmp_path, clock, body)
    (again,) = s2.tick()
    assert again.status == "refused" and "still going" in again.note and l2.started == []
    # the run ends (its process is gone): settled, and the next fire runs
    j = Journal(tmp_path / "journal.db")
    j.update_fire("nightly", at("2026-06-19 02:00"), pid=_dead_pid())
    clock.set("2026-06-19 02:30:00")
    assert [f.status for f in s2.tick()] == ["fired"]
    first = j.fires("nightly", limit=10)[-1]
    assert first.finished is not None and "no scheduler was watching" in first.note
    assert statuses(tmp_path) == [("06-19 02:00", "fired"), ("06-19 02:10", "refused"),
                                  ("06-19 02:20", "refused"), ("06-19 02:30", "fired")]


def test_the_end_of_a_run_is_recorded_with_its_id_and_status(tmp_path: Path) -> None:
    clock = Clock("2026-06-19 02:00:00")
    s, launcher = scheduler(tmp_path, clock)
    s.tick()
    child = launcher.started[0][2]
    child.code, child.status = 1, "halted"
    clock.set("2026-06-19 02:30:00")
    s.tick()
    row = Journal(tmp_path / "journal.db").fires("nightly")[0]
    assert (row.status, row.run_id, row.run_status, row.exit_code) == (
        "fired", f"run{launcher.pid}", "halted", 1)
    assert row.note == "halted: window closed" and row.finished is not None
    assert s.running == {} and s.ended[0][1].run_status == "halted"


def test_disabled_schedules_record_skipped_fires(tmp_path: Path) -> None:
    clock = Clock("2026-06-19 02:00:00")
    s, launcher = scheduler(tmp_path, clock, NIGHTLY + "  enabled: false\n")
    assert [(f.status, f.note) for f in s.tick()] == [("skipped", "the schedule is disabled")]
    assert launcher.started == []


def test_a_long_outage_records_the_latest_missed_fires_and_counts_the_rest(
        tmp_path: Path) -> None:
    body = NIGHTLY.replace('"0 2 * * *"', '"* * * * *"')
    clock = Clock("2026-06-19 02:00:00")
    s, launcher = scheduler(tmp_path, clock, body)
    s.tick()
    launcher.started[0][2].code = 0
    clock.set("2026-06-19 05:20:30")  # 200 minutes later
    s2, _ = scheduler(tmp_path, clock, body)
    fires = s2.tick()
    missed = [f for f in fires if f.status == "missed"]
    assert len(missed) == MISSED_LIMIT and [f.status for f in fires][-1] == "fired"
    assert missed[0].note.endswith("; 99 earlier fire(s) not recorded one by one")
    assert "superseded" not in missed[0].note


def test_stop_interrupts_runs_in_flight_and_records_them(tmp_path: Path) -> None:
    clock = Clock("2026-06-19 02:00:00")
    s, launcher = scheduler(tmp_path, clock)
    s.tick()
    s.stop_runs(timeout=5, sleep=lambda _: None)
    assert launcher.started[0][2].interrupts == 1
    row = Journal(tmp_path / "journal.db").fires("nightly")[0]
    assert (row.run_status, row.exit_code) == ("interrupted", 130)


def test_run_args_are_what_an_operator_would_type(tmp_path: Path) -> None:
    (sched,) = schedules_of(tmp_path, """\
        fix:
          runbook: check-ip-forward
          nodes: workers:!w3
          cron: "0 2 * * *"
          window: 1h
          dry_run: true
          vars: {persist_file: /etc/sysctl.d/1.conf}
          rollout: {batch_size: [1, 50%], max_fail: 1, pause: 10s}
    """).values()
    assert run_args(sched, at("2026-06-19 03:00")) == [
        "run", "check-ip-forward", "--nodes", "workers:!w3",
        "--var", "persist_file=/etc/sysctl.d/1.conf", "--batch-size", "1,50%",
        "--max-fail", "1", "--pause", "10s", "--dry-run",
        "--until", "2026-06-19T03:00:00+00:00", "--yes", "--json"]


# -- the CLI --------------------------------------------------------------------------------------
def netops(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netops", "--journal", str(tmp / "journal.db"),
                           *args], capture_output=True, text=True, cwd=tmp, timeout=60,
                          env={**os.environ, "NETOPS_INVENTORY": str(tmp / "inventory.yaml")})


def test_schedule_check_and_list(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text("all:\n  children:\n    workers:\n"
                                             "      hosts: {w1: {}, w2: {}}\n")
    schedules_of(tmp_path, NIGHTLY + textwrap.dedent("""\
        typo:
          runbook: check-ip-forwrd
          nodes: wrkers
          cron: "@daily"
          window: 30m
    """))
    bad = netops(tmp_path, "schedule", "check")
    assert bad.returncode == 2
    assert "schedules.yaml:10:12: schedule 'typo': unknown host or group 'wrkers'" in bad.stderr
    assert "schedules.yaml:9:14: schedule 'typo': no runbook named 'check-ip-forwrd'" \
        in bad.stderr and "did you mean: check-ip-forward?" in bad.stderr
    schedules_of(tmp_path, NIGHTLY)
    good = netops(tmp_path, "schedule", "check")
    assert good.returncode == 0 and "1 schedule(s), 0 problem(s)" in good.stderr
    j = Journal(tmp_path / "journal.db")
    j.claim_fire("nightly", at("2026-06-18 02:00"), "missed", claimed_by="t", note="down")
    listed = netops(tmp_path, "schedule", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (doc,) = json.loads(listed.stdout)["schedules"]
    assert doc["name"] == "nightly" and len(doc["next"]) == 3 and doc["next"][0].endswith(
        "02:00 UTC")
    assert doc["last"] == [{"fire_time": at("2026-06-18 02:00"), "at": "2026-06-18 02:00 UTC",
                            "status": "missed", "run_id": None, "run_status": None,
                            "exit_code": None, "note": "down"}]


def test_run_refuses_a_disruptive_runbook_outside_the_window_unless_forced(
        tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text(textwrap.dedent("""\
        all:
          vars: {ansible_host: 127.0.0.1, ansible_port: 1}
          children:
            closed:  # open one minute a year
              hosts: {c1: {}}
              vars: {netops_maintenance_window: {cron: "0 0 1 1 *", duration: 1m}}
            open:    # always open
              hosts: {o1: {}}
              vars: {netops_maintenance_window: {cron: "* * * * *", duration: 2m}}
    """))
    rb = tmp_path / "reboot-it.yaml"
    rb.write_text("name: reboot-it\ndescription: d\ndisruptive: true\n"
                  "steps:\n  - shell: 'true'\n")
    common = ("--connect-timeout", "1", "--host-keys", "off", "run", str(rb), "--yes")
    refused = netops(tmp_path, *common, "--nodes", "all")
    assert refused.returncode == 2
    assert "'reboot-it' is disruptive and 1 node(s) are outside their maintenance window " \
        "(netops_maintenance_window):\n  c1: 0 0 1 1 * for 1m (UTC); next opens " \
        in refused.stderr
    assert not Journal(tmp_path / "journal.db").runs()  # nothing started
    # a dry run is never refused
    dry = netops(tmp_path, *common, "--nodes", "c1", "--dry-run")
    # (it ran: a dry run connects, and c1, on a closed port, is unreachable)
    assert dry.returncode == 1 and "maintenance window" not in dry.stderr
    assert "c1: unreachable" in dry.stderr
    # --force runs anyway; inside the window no batch starts after the window closes
    from io import StringIO

    from rich.console import Console

    from netops.cli.run import _maintenance_window

    hosts = {h.name: h for h in load_inventory(tmp_path / "inventory.yaml").select(None)}
    out = StringIO()
    console = Console(file=out, width=200)
    book = load_runbook(rb)
    assert _maintenance_window(console, book, (hosts["c1"],), None, True) is None
    assert "--force: running reboot-it outside the maintenance window of:\n  c1: " \
        in out.getvalue()
    closes = _maintenance_window(console, book, (hosts["o1"],), None, False)
    assert closes is not None and 60 < closes - time.time() <= 120
    assert f"no batch starts after {fmt_time(closes)}" in out.getvalue()
    assert _maintenance_window(console, book, (hosts["o1"],), closes - 30, False) == closes - 30
