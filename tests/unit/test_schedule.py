"""Scheduled maintenance without a lab or a real minute going by: cron maths, windows,
schedules.yaml validation, the engine's deadline, and the scheduler driven by a hand-set clock."""

from __future__ import annotations

import textwrap
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
from netops.runbook.load import load_runbook
from netops.schedule import (
    Cron,
    CronError,
    check_windows,
    fmt_time,
    load_schedules,
    parse_until,
    parse_window,
)
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
    ("60 * * * *", "minute: 60 is outside 0-59"),
    ("* * * FOO *", "month: 'FOO' is not a number or a name"),
    ("* * * * 1-8", "day of week: 8 is outside 0-7"),
    ("0 0 * * FRI-MON", "runs backwards"),
    ("*/0 * * * *", "minute: 0 is outside 1-59"),
    ("0 0 30 2 *", "never fires"),
    ("@reboot", "unknown alias"),
])
def test_bad_expressions_say_which_field(expr: str, words: str) -> None:
    with pytest.raises(CronError, match=words):
        Cron.parse(expr)


def test_a_local_time_skipped_by_dst_fires_once_after_the_jump() -> None:
    # Europe/Berlin jumps 02:00 -> 03:00 on 2026-03-29
    assert upcoming("30 2 * * *", "2026-03-28 12:00", 3, BERLIN) == [
        "Sun 2026-03-29 03:30", "Mon 2026-03-30 02:30", "Tue 2026-03-31 02:30"]
    # and 02:30 + 03:30 that day is one fire, not two
    fires = Cron.parse("30 2,3 * * *").between(at("2026-03-29 00:00", BERLIN),
                                               at("2026-03-29 12:00", BERLIN), BERLIN)
    assert [fmt_time(t, BERLIN) for t in fires] == ["2026-03-29 03:30 CEST"]


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
    (('cron: "0 2 * * *"', 'cron: "0 25 * * *"'), "7:11", "hour: 25 is outside 0-23"),
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
