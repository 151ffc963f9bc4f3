"""Prometheus metrics: the diagnose textfile (node_exporter's format, written atomically) and
the scheduler's /metrics, fed by a scheduler driven with a hand-set clock."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netops.diagnose import Diagnosis, Finding
from netops.errors import UserError
from netops.journal import Journal
from netops.metrics import SchedulerMetrics, serve, write_textfile
from netops.schedule import Schedule, load_schedules
from netops.scheduler import Outcome, Scheduler, run_args


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def matrix() -> Diagnosis:
    d = Diagnosis(["check-ip-forward", "fix-calico"])
    d.nodes = {"n1": {"check-ip-forward": Finding("ok"), "fix-calico": Finding("broken", "x")},
               "n2": {"check-ip-forward": Finding("unknown"),
                      "fix-calico": Finding("unreachable")}}
    return d


def test_diagnose_textfile_is_node_exporter_format_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "netops.prom"
    path.write_text("old")
    write_textfile(path, matrix(), 1700000000.0, 2.5)
    got = samples(path.read_text())
    status = {labels: v for (name, labels), v in got.items() if name == "netops_check_status"}
    assert status == {(("node", "n1"), ("runbook", "check-ip-forward")): 0,
                      (("node", "n1"), ("runbook", "fix-calico")): 1,
                      (("node", "n2"), ("runbook", "check-ip-forward")): 2,
                      (("node", "n2"), ("runbook", "fix-calico")): 3}
    assert got[("netops_diagnose_timestamp_seconds", ())] == 1700000000.0
    assert got[("netops_diagnose_duration_seconds", ())] == 2.5
    assert [p.name for p in tmp_path.iterdir()] == ["netops.prom"]  # no temporary file left
    with pytest.raises(UserError, match="no directory"):
        write_textfile(tmp_path / "nope" / "x.prom", matrix(), 0, 0)


class Child:
    def __init__(self, pid: int, outcome: Outcome) -> None:
        self.pid, self.code, self.out = pid, None, outcome

    def poll(self) -> int | None:
        return self.code

    def interrupt(self) -> None:
        self.code = 130

    def outcome(self) -> Outcome:
        return self.out


class Launcher:
    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, schedule: Schedule, window_end: float) -> Child:
        doc = {"checks": ["fix-calico"], "nodes": {"n1": {"fix-calico": {
            "status": "broken", "evidence": "e"}}}} if schedule.diagnose else None
        child = Child(999_999_0 + len(self.children),
                      Outcome(1 if schedule.diagnose else 0, None,
                              None if schedule.diagnose else "ok", "", doc))
        self.children.append(child)
        return child


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_scheduler_metrics_over_http(tmp_path: Path) -> None:
    (tmp_path / "schedules.yaml").write_text("""\
schedules:
  nightly: {runbook: check-ip-forward, nodes: all, cron: "0 2 * * *", window: 1h}
  matrix: {diagnose: true, nodes: all, cron: "0 2 * * *", window: 1h}
""")
    found = load_schedules(tmp_path / "schedules.yaml")
    assert run_args(found["matrix"], 0)[:4] == ["diagnose", "--nodes", "all", "--json"]
    now = [at("2026-06-19 01:00")]
    journal = Journal(tmp_path / "j.db")
    launcher = Launcher()
    metrics = SchedulerMetrics(journal)
    sched = Scheduler(journal, launcher, clock=lambda: now[0], grace=60,
                      watchers=[metrics])
    sched.set_schedules(found)
    now[0] = at("2026-06-22 02:00:30")  # three nights missed, the fourth on time
    sched.tick()
    for child in launcher.children:
        child.code = child.out.exit_code
    sched.reap()
    server = serve(metrics.registry, 0)
    try:
        port = server.server_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            got = samples(resp.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert got[("netops_schedule_runs_total", (("schedule", "nightly"), ("status", "ok")))] == 1
    assert got[("netops_schedule_runs_total", (("schedule", "matrix"), ("status", "ok")))] == 1
    assert got[("netops_schedule_missed_fires_total", (("schedule", "nightly"),))] == 3
    assert got[("netops_schedule_fires_total", (("schedule", "nightly"), ("status", "fired")))] \
        == 1
    assert got[("netops_schedule_last_fire_timestamp_seconds", (("schedule", "nightly"),))] \
        == at("2026-06-22 02:00")
    assert got[("netops_schedule_last_success_timestamp_seconds", (("schedule", "nightly"),))] \
        > 0
    assert got[("netops_schedule_running", (("schedule", "nightly"),))] == 0
    assert got[("netops_check_status", (("node", "n1"), ("runbook", "fix-calico")))] == 1
