"""Webhook notifications: targets and their redaction, the two bodies, and delivery to a local
receiver (delivered, retried after a 500, a receiver that hangs never holds anything up)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from netops.engine.result import HostResult, RunResult, RunStatus, Status, StepResult
from netops.errors import LoadError, UserError
from netops.journal import Journal
from netops.notify import (
    Event,
    Notifier,
    ScheduleNotifier,
    Target,
    event_from_journal,
    event_from_result,
    json_body,
    notify_run,
    parse_target,
    redact,
    redact_argv,
    slack_body,
)
from netops.schedule import load_schedules
from netops.scheduler import Fire, Outcome
from tests.receiver import receiver

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


def test_urls_are_redacted_wherever_they_are_shown() -> None:
    assert redact(SLACK) == "https://hooks.slack.com/***"
    assert redact("http://u:pw@127.0.0.1:8080/hook?token=abc&x=1#f") == \
        "http://u:***@127.0.0.1:8080/***?token=***&x=***"
    assert redact("http://[::1]:9/") == "http://[::1]:9/"
    assert redact("not a url") == "***"
    assert str(parse_target("slack+" + SLACK)) == "slack+https://hooks.slack.com/***"
    assert redact_argv(["netops", "run", "x", "--notify", SLACK, f"--notify=slack+{SLACK}"]) \
        == ["netops", "run", "x", "--notify", "https://hooks.slack.com/***",
            "--notify=slack+https://hooks.slack.com/***"]


def test_targets_parse_or_fail_without_quoting_the_secret() -> None:
    assert parse_target(SLACK) == Target(SLACK, "json")
    assert parse_target({"url": SLACK, "format": "slack"}) == Target(SLACK, "slack")
    for bad in ("ftp://host/XXXXsecretXXXX", "https:///XXXXsecretXXXX", 42,
                {"url": SLACK, "format": "teams"}, {"href": SLACK}):
        with pytest.raises(UserError) as e:
            parse_target(bad)
        assert "XXXXsecretXXXX" not in str(e.value)


def test_schedules_yaml_takes_notify_and_diagnose(tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text(f"""\
schedules:
  nightly:
    runbook: check-ip-forward
    nodes: all
    cron: "0 2 * * *"
    window: 2h
    notify: ["slack+{SLACK}", {{url: "http://127.0.0.1:9/hook", format: json}}]
  matrix:
    diagnose: true
    nodes: workers
    cron: "*/15 * * * *"
    window: 10m
    notify: http://127.0.0.1:9/one
""")
    found = load_schedules(path)
    assert found["nightly"].notify == (Target(SLACK, "slack"),
                                       Target("http://127.0.0.1:9/hook", "json"))
    assert found["matrix"].diagnose and found["matrix"].runbook == ""
    assert len(found["matrix"].notify) == 1
    path.write_text(path.read_text().replace("http://127.0.0.1:9/one", "gopher://x/s3cr3tp4th"))
    with pytest.raises(LoadError) as e:
        load_schedules(path)
    assert ":13:" in str(e.value) and "s3cr3tp4th" not in str(e.value)
    path.write_text("schedules:\n  x: {nodes: all, cron: '@daily', window: 1h}\n")
    with pytest.raises(LoadError, match="missing required field 'runbook'"):
        load_schedules(path)


def _run() -> RunResult:
    bad = StepResult("apply", "apply", Status.FAILED, rc=1, note="<!channel> & <b>rc 1</b>")
    return RunResult("abc123", "fix-calico", False, RunStatus.HALTED, (("n1",), ("n2",)), {
        "n1": HostResult("n1", 1, Status.FAILED, (bad,)),
        "n2": HostResult("n2", 2, Status.NOT_RUN)}, reason="halted: 1 host failed")


def test_bodies_carry_the_run_and_slack_text_is_escaped() -> None:
    ev = event_from_result(_run(), "workers")
    body = json_body(ev)
    assert body["event"] == "halted" and body["status"] == "halted"
    assert body["run_id"] == "abc123" and body["runbook"] == "fix-calico"
    assert body["hosts"] == {"failed": ["n1"], "not-run": ["n2"]}
    assert body["findings"] == [{"host": "n1", "step": "apply", "status": "failed",
                                 "note": "<!channel> & <b>rc 1</b>"}]
    assert body["report"] == "netops report abc123"
    slack = slack_body(ev)
    text = str(slack)
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; &lt;b&gt;" in text
    assert slack["text"].startswith("netops fix-calico on workers: run abc123 halted")
    assert "netops report abc123" in text


def test_delivery_and_a_retry_after_a_500() -> None:
    said: list[str] = []
    with receiver(fail_first=1) as rec:
        n = Notifier([parse_target(rec.url), parse_target("slack+" + rec.url)], backoff=0.05,
                     say=said.append)
        n.send(event_from_result(_run()))
        assert n.wait(10) == []
        assert rec.wait_for(2)
    kinds = sorted("blocks" in p for p in rec.posts)
    assert kinds == [False, True]  # one generic JSON body, one Slack body
    assert rec.attempts == 3
    assert any("after 2 attempts" in s for s in said)
    assert all("s3cr3tT0ken" not in s and "qu3rys3cret" not in s for s in said), said


def test_a_url_with_user_and_password_is_delivered() -> None:
    """user:password in the URL become a Basic Authorization header (urllib alone reads them
    as a bad port), and the shown URL keeps the user as written."""
    with receiver() as rec:
        url = rec.url.replace("://", "://us%40er:p%3Aw@", 1)
        assert str(parse_target(url)).startswith("http://us%40er:***@127.0.0.1:")
        n = Notifier([parse_target(url)], backoff=0.05, say=lambda _: None)
        n.send(event_from_result(_run()))
        assert n.wait(10) == [] and rec.wait_for(1) and rec.attempts == 1


def test_a_receiver_that_hangs_holds_nothing_up() -> None:
    said: list[str] = []
    with receiver(hang=True) as rec:
        n = Notifier([parse_target(rec.url)], attempts=2, backoff=0.05, timeout=0.5,
                     say=said.append)
        began = time.monotonic()
        n.send(Event("ended", "ok", "probe"))
        assert time.monotonic() - began < 0.2  # send never waits for the receiver
        n.wait(5)
        took = time.monotonic() - began
    assert took < 3, took
    assert rec.attempts == 2
    assert any("failed after 2 attempt(s)" in s and "timed out" in s for s in said), said
    assert all("s3cr3tT0ken" not in s for s in said)


def test_an_unreachable_receiver_gives_up_within_the_wait() -> None:
    said: list[str] = []
    n = Notifier([parse_target("http://127.0.0.1:9/x/s3cr3tT0ken")], backoff=5, say=said.append)
    n.send(Event("ended", "ok", "probe"))
    began = time.monotonic()
    assert len(n.wait(0.5)) == 1
    assert time.monotonic() - began < 2
    assert any("giving up" in s for s in said) and not any("s3cr3tT0ken" in s for s in said)


def test_notify_run_prints_and_never_raises() -> None:
    class Console:
        lines: list[str] = []

        def print(self, text: str, **kw: object) -> None:
            self.lines.append(text)

    with receiver() as rec:
        console = Console()
        notify_run(console, [parse_target(rec.url)], _run(), "workers", wait=5)
        assert rec.posts[0]["run_id"] == "abc123" and rec.posts[0]["nodes"] == "workers"
    assert any(line.startswith("notified http://127.0.0.1:") and "/***?token=***" in line
               for line in console.lines), console.lines


def test_the_scheduler_watcher_notifies_ended_and_missed(tmp_path: Path) -> None:
    from tests.runs import journaled_run

    journal = Journal(tmp_path / "j.db")
    run = journaled_run(tmp_path, journal, pause="0s")
    sched = tmp_path / "schedules.yaml"
    with receiver() as rec:
        sched.write_text(f"schedules:\n  nightly: {{runbook: tune-forwarding, nodes: all, "
                         f"cron: '@daily', window: 1h, notify: ['{rec.url}']}}\n")
        s = load_schedules(sched)["nightly"]
        notifier = Notifier(backoff=0.05)
        watcher = ScheduleNotifier(journal, notifier)
        watcher.ended(s, "nightly", 1000.0, Outcome(1, run.run_id, "failed"))
        watcher.fired(s, Fire("nightly", 900.0, "missed", "nobody fired it on time"))
        watcher.fired(s, Fire("nightly", 1100.0, "fired"))  # a launch is not news
        notifier.wait(10)
        assert rec.wait_for(2)
    ended, missed = sorted(rec.posts, key=lambda p: p["event"])
    assert ended["event"] == "ended" and ended["status"] == "failed"
    assert ended["schedule"] == "nightly" and ended["fire_time"] == 1000.0
    assert ended["hosts"]["failed"] == ["n3"] and len(ended["hosts"]["changed"]) == 4
    assert {"host": "n3", "step": "apply", "status": "failed", "note": ""} in ended["findings"]
    assert ended["report"] == f"netops report {run.run_id}"
    assert missed["event"] == "missed" and missed["status"] == "missed"
    assert missed["reason"] == "nobody fired it on time"
    assert event_from_journal(journal, "nope") is None
