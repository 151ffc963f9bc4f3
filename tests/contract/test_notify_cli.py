"""Notifications from the real commands: `netops run --notify` and a schedule's `notify:` fired
by `netops scheduler --once`, against a real sshd on 127.0.0.1 and a local webhook receiver."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from netops.journal import Journal
from tests.contract.sshd import Sshd
from tests.contract.test_prometheus import fleet
from tests.receiver import receiver


def test_run_notify_delivers_retries_and_keeps_the_url_secret(tmp_path: Path,
                                                             sshd: Sshd) -> None:
    netops = fleet(tmp_path, sshd)
    with receiver(fail_first=1) as rec:
        began = time.monotonic()
        done = subprocess.run([*netops, "run", "probe-broken", "--nodes", "box", "--yes",
                               "--json", "--notify", rec.url, "--notify", f"slack+{rec.url}"],
                              capture_output=True, text=True, timeout=120)
        took = time.monotonic() - began
        assert rec.wait_for(2)
    assert done.returncode == 1, done.stderr  # the run's own outcome, whatever the webhooks
    run_id = json.loads(done.stdout)["run_id"]
    generic = next(p for p in rec.posts if "blocks" not in p)
    slack = next(p for p in rec.posts if "blocks" in p)
    assert generic["run_id"] == run_id and generic["status"] == "failed"
    assert generic["hosts"] == {"failed": ["box"]} and generic["report"] == \
        f"netops report {run_id}"
    assert generic["findings"][0]["step"] == "marker"
    assert run_id in slack["text"]
    assert rec.attempts == 3 and took < 60
    assert "s3cr3tT0ken" not in done.stderr and "qu3rys3cret" not in done.stderr
    assert "notified http://127.0.0.1:" in done.stderr
    run = Journal(tmp_path / "journal.db").run(run_id)
    assert run is not None
    argv = run.argv
    assert "--notify" in argv and not any("s3cr3tT0ken" in a for a in argv), argv


def test_scheduler_once_notifies_the_schedules_webhooks(tmp_path: Path, sshd: Sshd) -> None:
    netops = fleet(tmp_path, sshd)
    with receiver() as rec:
        (tmp_path / "schedules.yaml").write_text(f"""\
schedules:
  nightly: {{runbook: probe-ok, nodes: box, cron: "* * * * *", window: 1h,
             notify: ["{rec.url}"]}}
""")
        done = subprocess.run([*netops, "scheduler", "--once", "--grace", "2m"],
                              env={**os.environ,
                                   "NETOPS_SCHEDULES": str(tmp_path / "schedules.yaml")},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert rec.wait_for(1)
    post = rec.posts[0]
    assert post["schedule"] == "nightly" and post["status"] == "ok" and post["event"] == "ended"
    assert post["hosts"] == {"ok": ["box"]} and post["run_id"]
    assert "s3cr3tT0ken" not in done.stderr and "notified http://127.0.0.1:" in done.stderr
