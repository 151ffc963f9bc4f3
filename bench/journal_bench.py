"""Journal at scale: write N runs (hosts x steps each) and time the history queries.

    python3 bench/journal_bench.py [--runs 1000] [--hosts 18] [--steps 6]

Prints medians of 7 tries per query, in milliseconds. The issue's bar: under 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from netops.engine.events import BatchStarted, HostFinished, RunFinished, StepFinished, StepStarted
from netops.engine.result import HostResult, RunResult, RunStatus, Status, StepResult
from netops.journal import Journal, RunRecord


def fill(j: Journal, runs: int, hosts: int, steps: int) -> None:
    names = [f"chick{i}" for i in range(1, hosts + 1)]
    for r in range(runs):
        run_id = f"run{r:05d}"
        j.start_run(RunRecord(run_id=run_id, runbook=f"rb{r % 9}", nodes="all",
                              batches=[names], started=time.time() - (runs - r) * 3600))
        obs = j.observer(run_id)
        obs.on_event(BatchStarted(1, tuple(names)))
        results = {}
        for h in names:
            done = []
            for s in range(steps):
                obs.on_event(StepStarted(h, f"s{s}", f"step {s}"))
                res = StepResult(f"s{s}", f"step {s}", Status.OK, rc=0, command="true",
                                 stdout="ok\n" * 20, duration_s=0.01)
                obs.on_event(StepFinished(h, res))
                done.append(res)
            results[h] = HostResult(h, 1, Status.OK, tuple(done))
            obs.on_event(HostFinished(results[h]))
        obs.on_event(RunFinished(RunResult(run_id, f"rb{r % 9}", False, RunStatus.OK,
                                           (tuple(names),), results)))


def timed(fn: object) -> float:
    samples = []
    for _ in range(7):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--hosts", type=int, default=18)
    ap.add_argument("--steps", type=int, default=6)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        j = Journal(Path(d) / "journal.db")
        t = time.perf_counter()
        fill(j, a.runs, a.hosts, a.steps)
        took = time.perf_counter() - t
        events = a.runs * (2 + a.hosts * (1 + 2 * a.steps))
        print(f"wrote {a.runs} runs x {a.hosts} hosts x {a.steps} steps in {took:.1f}s "
              f"({took / events * 1e6:.0f} us per event, each its own commit)")
        size = (Path(d) / "journal.db").stat().st_size / 1e6
        print(f"database: {size:.1f} MB")
        queries = {
            "history (newest 20)": lambda: j.runs(limit=20),
            "history --node chick11": lambda: j.runs(node="chick11", limit=20),
            "history --runbook rb3 --since 7d": lambda: j.runs(
                runbook="rb3", since=time.time() - 7 * 86400, limit=20),
            "report of one run (hosts + steps)": lambda: (j.hosts("run00500"),
                                                          j.steps("run00500")),
        }
        for name, q in queries.items():
            print(f"{name:40s} median {timed(q):7.2f} ms")


if __name__ == "__main__":
    main()
