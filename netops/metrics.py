"""Prometheus metrics: `netops diagnose --metrics FILE` and `netops scheduler --metrics-port N`.

`diagnose --metrics` writes node_exporter's textfile format (its textfile collector reads
`*.prom` files from `--collector.textfile.directory`); the file is written under a temporary
name and renamed into place, so the collector never reads half a file. `--metrics-port` serves
`/metrics` from the scheduler process with `prometheus_client`, fed by the scheduler's
`SchedulerMetrics` watcher. Both publish the diagnose matrix as `netops_check_status{node,
runbook}`: 0 ok, 1 broken, 2 unknown, 3 unreachable (contrib/netops-alerts.yml alerts on it).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    from netops.diagnose import Diagnosis
    from netops.journal import Journal
    from netops.schedule import Schedule
    from netops.scheduler import Fire, Outcome

STATUS_CODES = {"ok": 0, "broken": 1, "unknown": 2, "unreachable": 3}
CHECK_HELP = ("Diagnose finding per node and runbook: 0 ok, 1 broken (the runbook would fix "
              "it), 2 unknown, 3 unreachable")


def _check_gauge(registry: CollectorRegistry) -> Gauge:
    return Gauge("netops_check_status", CHECK_HELP, ["node", "runbook"], registry=registry)


def set_matrix(gauge: Gauge, nodes: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace the gauge's series by `nodes` (node -> runbook -> status, or an object with
    `.status`, or a {"status": ...} mapping as `Diagnosis.to_json` has it)."""
    gauge.clear()
    for node, row in nodes.items():
        for runbook, finding in row.items():
            status = finding if isinstance(finding, str) else (
                finding.get("status") if isinstance(finding, Mapping) else finding.status)
            gauge.labels(node=node, runbook=runbook).set(STATUS_CODES.get(str(status), 2))


def diagnose_registry(result: Diagnosis, started: float, duration: float) -> CollectorRegistry:
    registry = CollectorRegistry()
    set_matrix(_check_gauge(registry), result.nodes)
    Gauge("netops_diagnose_timestamp_seconds", "When the last netops diagnose started (Unix "
          "time)", registry=registry).set(started)
    Gauge("netops_diagnose_duration_seconds", "How long the last netops diagnose took",
          registry=registry).set(duration)
    return registry


def write_textfile(path: Path, result: Diagnosis, started: float, duration: float) -> None:
    """The node_exporter textfile of a diagnosis, written atomically (a temporary file in the
    same directory, then a rename)."""
    from prometheus_client import write_to_textfile

    from netops.errors import UserError

    if not path.parent.is_dir():
        raise UserError(f"--metrics {path}: no directory {path.parent}",
                        hint="node_exporter reads *.prom files from its "
                        "--collector.textfile.directory")
    try:
        write_to_textfile(str(path), diagnose_registry(result, started, duration))
    except OSError as e:
        raise UserError(f"--metrics {path}: cannot write: {e.strerror or e}") from None


class SchedulerMetrics:
    """A scheduler watcher (see `netops.scheduler.Scheduler.watchers`) keeping the scheduler's
    metrics in its own registry."""

    def __init__(self, journal: Journal | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.journal = journal
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.runs = Counter("netops_schedule_runs", "Runs fired by the scheduler, by schedule "
                            "and final status (ok, failed, halted, interrupted; error: ended "
                            "without a run status)", ["schedule", "status"], registry=r)
        self.fires = Counter("netops_schedule_fires", "Fire times dealt with, by schedule and "
                             "what became of them (fired, missed, refused, skipped)",
                             ["schedule", "status"], registry=r)
        self.missed = Counter("netops_schedule_missed_fires", "Fire times nobody fired on "
                              "time (or refused: the previous run was still going)",
                              ["schedule"], registry=r)
        self.last_fire = Gauge("netops_schedule_last_fire_timestamp_seconds", "Fire time of "
                               "the schedule's last fired run (Unix time)", ["schedule"],
                               registry=r)
        self.last_success = Gauge("netops_schedule_last_success_timestamp_seconds", "When the "
                                  "schedule's last run that ended ok finished (Unix time)",
                                  ["schedule"], registry=r)
        self.last_status = Gauge("netops_schedule_last_run_ok", "1 when the schedule's last "
                                 "run ended ok, 0 when it did not", ["schedule"], registry=r)
        self.hosts = Counter("netops_schedule_hosts", "Hosts of the scheduled runs, by "
                             "schedule and host status (changed, failed, ...)",
                             ["schedule", "status"], registry=r)
        self.last_hosts = Gauge("netops_schedule_last_run_hosts", "Hosts of the schedule's "
                                "last run, by status", ["schedule", "status"], registry=r)
        self.running = Gauge("netops_schedule_running", "1 while a run of the schedule is "
                             "going", ["schedule"], registry=r)
        self.checks = _check_gauge(r)
        self.diagnosed = Gauge("netops_diagnose_timestamp_seconds", "When the last scheduled "
                               "netops diagnose ended (Unix time)", registry=r)
        self._lock = threading.Lock()

    def fired(self, schedule: Schedule, fire: Fire) -> None:
        with self._lock:
            self.fires.labels(schedule=fire.schedule, status=fire.status).inc()
            if fire.status in ("missed", "refused"):
                self.missed.labels(schedule=fire.schedule).inc()
            if fire.status == "fired":
                self.last_fire.labels(schedule=fire.schedule).set(fire.fire_time)
                self.running.labels(schedule=fire.schedule).set(1)

    def ended(self, schedule: Schedule | None, name: str, fire_time: float,
              outcome: Outcome) -> None:
        import time

        with self._lock:
            self.running.labels(schedule=name).set(0)
            doc = outcome.doc or {}
            if "checks" in doc and isinstance(doc.get("nodes"), Mapping):  # a diagnose
                set_matrix(self.checks, doc["nodes"])
                self.diagnosed.set(time.time())
                ok = outcome.exit_code in (0, 1)  # 1: it ran, and found something
                status = "ok" if ok else "error"
            else:
                status = outcome.run_status or "error"
                ok = status == "ok"
                self._count_hosts(name, outcome.run_id)
            self.runs.labels(schedule=name, status=status).inc()
            self.last_status.labels(schedule=name).set(1 if ok else 0)
            if ok:
                self.last_success.labels(schedule=name).set(time.time())

    def _count_hosts(self, name: str, run_id: str | None) -> None:
        if self.journal is None or not run_id:
            return
        from netops.errors import JournalError

        try:
            rows = self.journal.hosts(run_id)
        except JournalError:
            return
        counts: dict[str, int] = {}
        for h in rows:
            counts[h.status] = counts.get(h.status, 0) + 1
        for status in ("ok", "changed", "failed", "unreachable", "not-run", "would-change"):
            self.last_hosts.labels(schedule=name, status=status).set(counts.get(status, 0))
        for status, n in counts.items():
            self.hosts.labels(schedule=name, status=status).inc(n)


def serve(registry: CollectorRegistry, port: int, address: str = "127.0.0.1") -> Any:
    """Serve `registry` on http://address:port/metrics in a daemon thread; returns the server
    (call `.shutdown()` to stop it)."""
    from prometheus_client import start_http_server

    from netops.errors import UserError

    try:
        server, _thread = start_http_server(port, addr=address, registry=registry)
    except OSError as e:
        raise UserError(f"--metrics-port {port}: cannot listen on {address}:{port}: "
                        f"{e.strerror or e}") from None
    return server
