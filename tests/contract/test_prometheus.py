"""A real Prometheus scrapes `netops diagnose --metrics` through node_exporter's textfile
collector and `netops scheduler --metrics-port` directly; values are read back through
Prometheus' HTTP query API, and contrib/netops-alerts.yml is loaded, checked and unit-tested
with promtool. The node is a real sshd on 127.0.0.1 (tests/contract/sshd.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netops.journal import Journal
from tests.contract import services
from tests.contract.services import node_exporter, process, prometheus, query, value_of
from tests.contract.sshd import Sshd, free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "contrib" / "netops-alerts.yml"

pytestmark = pytest.mark.skipif(not services.available(),
                                reason="needs Debian's prometheus and prometheus-node-exporter")


def fleet(tmp: Path, sshd: Sshd) -> list[str]:
    """One node (the sshd), two read-only runbooks: probe-ok holds, probe-broken does not."""
    (tmp / "inventory.yaml").write_text("all:\n  hosts:\n    box: {}\n")
    books = tmp / "runbooks"
    books.mkdir()
    (books / "probe-ok.yaml").write_text(
        "name: probe-ok\ndescription: always holds\nsteps:\n  - id: up\n    check: 'true'\n")
    (books / "probe-broken.yaml").write_text(
        "name: probe-broken\ndescription: never holds\nsteps:\n  - id: marker\n"
        "    check: test -e /nonexistent/netops-probe-marker\n    fail: true\n")
    return [sys.executable, "-m", "netops", "-i", str(tmp / "inventory.yaml"), "--ssh-config",
            str(sshd.ssh_config), "--runbooks", str(books), "--journal", str(tmp / "journal.db")]


def test_promtool_checks_and_unit_tests_the_alert_rules(tmp_path: Path) -> None:
    done = subprocess.run([services.PROMTOOL, "check", "rules", str(RULES)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "SUCCESS: 5 rules found" in done.stdout, done.stdout
    (tmp_path / "test.yml").write_text(f"""\
rule_files: ['{RULES}']
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'netops_check_status{{node="chick11",runbook="fix-calico"}}'
        values: '1x20'
      - series: 'netops_check_status{{node="chick12",runbook="fix-calico"}}'
        values: '1x10 0x10'
    alert_rule_test:
      - eval_time: 14m
        alertname: NetopsNodeBroken
        exp_alerts: []
      - eval_time: 16m
        alertname: NetopsNodeBroken
        exp_alerts:
          - exp_labels: {{severity: warning, node: chick11, runbook: fix-calico}}
            exp_annotations:
              summary: chick11 is broken for runbook fix-calico
              description: >-
                netops diagnose has found chick11 broken for fix-calico for 15 minutes. See
                what the fix would change: netops run fix-calico --nodes chick11 --dry-run
""")
    done = subprocess.run([services.PROMTOOL, "test", "rules", str(tmp_path / "test.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_scrapes_the_textfile_and_the_scheduler(tmp_path: Path, sshd: Sshd) -> None:
    netops = fleet(tmp_path, sshd)
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    done = subprocess.run([*netops, "diagnose", "--nodes", "box", "-r", "probe-ok", "-r",
                           "probe-broken", "--metrics",
                           str(textfiles / "netops.prom"), "--html", str(tmp_path / "d.html")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # probe-broken is broken
    assert "metrics written to" in done.stderr
    # A schedule that fires every minute, whose last fire the journal says was 10 minutes ago
    # (so the scheduler records the fires in between as missed), and a diagnose schedule.
    now = time.time()
    Journal(tmp_path / "journal.db").claim_fire(
        "nightly", now - now % 60 - 600, "fired", claimed_by="test", window_end=now - 500,
        note="seeded by the test", controller="elsewhere")
    (tmp_path / "schedules.yaml").write_text("""\
schedules:
  nightly: {runbook: probe-ok, nodes: box, cron: "* * * * *", window: 1h}
  matrix: {diagnose: true, runbook: probe-broken, nodes: box, cron: "* * * * *", window: 1h}
""")
    port = free_port()
    with node_exporter(textfiles, tmp_path / "node_exporter.log") as exporter, \
            process([*netops, "scheduler", "--grace", "2m", "--metrics-port", str(port)],
                    tmp_path / "scheduler.log", ready=f"http://127.0.0.1:{port}/metrics",
                    env={**os.environ, "NETOPS_SCHEDULES": str(tmp_path / "schedules.yaml")}), \
            prometheus(tmp_path, {"node": exporter, "netops-scheduler": port}, RULES) as url:
        status = 'netops_check_status{job="%s",node="box",runbook="%s"}'
        assert value_of(url, status % ("node", "probe-broken")) == 1
        assert value_of(url, status % ("node", "probe-ok")) == 0
        assert value_of(url, 'netops_diagnose_duration_seconds{job="node"}') > 0
        assert value_of(url, 'netops_schedule_runs_total{schedule="nightly",status="ok"}') >= 1
        assert value_of(url, 'netops_schedule_missed_fires_total{schedule="nightly"}') >= 9
        assert value_of(url, 'netops_schedule_last_success_timestamp_seconds'
                             '{schedule="nightly"}') > now - 120
        assert value_of(url, 'netops_schedule_last_run_hosts{schedule="nightly",status="ok"}') \
            == 1
        assert value_of(url, status % ("netops-scheduler", "probe-broken")) == 1
        # the example rule sees the broken node (pending: it fires after 15 minutes)
        pending = 'ALERTS{alertname="NetopsNodeBroken",alertstate="pending",node="box"}'
        assert value_of(url, pending) == 1
        assert {r["metric"]["runbook"] for r in query(url, pending)} == {"probe-broken"}
    log = (tmp_path / "scheduler.log").read_text()
    assert "metrics on http://127.0.0.1:" in log and "scheduler stopped" in log, log
