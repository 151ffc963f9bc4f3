"""The resume state of a chain of runs, read from a real SQLite journal (netops.resume)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from netops.errors import UserError
from netops.journal import Journal, RunRecord, StepRow
from netops.resume import resume_state

RUNBOOK = """\
name: two
description: two mutating steps
steps:
  - id: a
    shell: echo a
  - id: b
    shell: echo b
"""
DEAD_PID = 2 ** 22 + 12345  # above pid_max's default: no such process


def _journal(tmp: Path, runbook: str = RUNBOOK) -> tuple[Journal, Path]:
    rb = tmp / "two.yaml"
    rb.write_text(runbook)
    return Journal(tmp / "j.db"), rb


def _run(j: Journal, rb: Path, run_id: str, batches: list[list[str]],
         resumed_from: str | None = None) -> None:
    j.start_run(RunRecord(run_id=run_id, runbook="two", runbook_path=str(rb),
                          runbook_sha256=hashlib.sha256(rb.read_bytes()).hexdigest(),
                          batches=batches, resumed_from=resumed_from, pid=DEAD_PID,
                          rollout={"tolerance": 0, "forks": 5}))
    time.sleep(0.002)  # runs are ordered by their start


def _step(j: Journal, run_id: str, host: str, seq: int, step: str, status: str) -> None:
    j.record_step(StepRow(run_id, host, seq, step, status=status, started=time.time()))


def _host(j: Journal, run_id: str, host: str, status: str) -> None:
    j.start_batch(run_id, 1, [host])
    if status != "running":
        j.finish_host(run_id, host, status)


def test_a_dead_run_leaves_every_unstarted_host_and_its_in_flight_step_unknown(
        tmp_path: Path) -> None:
    j, rb = _journal(tmp_path)
    _run(j, rb, "r1", [["n1"], ["n2"], ["n3"]])
    _host(j, "r1", "n1", "running")
    _step(j, "r1", "n1", 1, "a", "changed")
    _step(j, "r1", "n1", 2, "b", "running")  # in flight when it was killed
    state = resume_state(j, "r1")
    assert state.unfinished == ("n1", "n2", "n3")
    assert state.done == {"n1": frozenset({"a"})}
    assert state.unknown == {"n1": frozenset({"b"})}
    assert state.rollout == {"tolerance": 0, "forks": 5}
    assert [r.status for r in j.steps("r1")] == ["changed", "unknown"]


def test_the_chain_is_read_from_any_of_its_runs(tmp_path: Path) -> None:
    j, rb = _journal(tmp_path)
    _run(j, rb, "r1", [["n1"], ["n2"]])
    _host(j, "r1", "n1", "failed")
    _step(j, "r1", "n1", 1, "a", "changed")
    _step(j, "r1", "n1", 2, "b", "unknown")
    j.finish_run("r1", "halted")
    _run(j, rb, "r2", [["n1"], ["n2"]], resumed_from="r1")
    _host(j, "r2", "n1", "failed")
    _host(j, "r2", "n2", "changed")
    _step(j, "r2", "n2", 1, "a", "changed")
    _step(j, "r2", "n2", 2, "b", "changed")
    j.finish_run("r2", "failed")
    for named in ("r1", "r2"):
        state = resume_state(j, named)
        assert state.chain == ("r1", "r2") and state.latest == "r2"
        assert state.unfinished == ("n1",)
        assert state.done == {"n1": frozenset({"a"}), "n2": frozenset({"a", "b"})}
        assert state.unknown == {"n1": frozenset({"b"})}
    _run(j, rb, "r3", [["n1"]], resumed_from="r2")
    _host(j, "r3", "n1", "changed")
    _step(j, "r3", "n1", 1, "b", "changed")
    j.finish_run("r3", "ok")
    for named in ("r1", "r2", "r3"):
        with pytest.raises(UserError, match="nothing to resume"):
            resume_state(j, named)


def test_a_running_run_is_not_resumed(tmp_path: Path) -> None:
    import os

    j, rb = _journal(tmp_path)
    j.start_run(RunRecord(run_id="live", runbook="two", runbook_path=str(rb),
                          runbook_sha256=hashlib.sha256(rb.read_bytes()).hexdigest(),
                          batches=[["n1"]], pid=os.getpid()))
    with pytest.raises(UserError, match="still running"):
        resume_state(j, "live")


def test_a_once_step_done_on_any_host_is_done_for_the_resume(tmp_path: Path) -> None:
    """Before/after steps run once, on whichever host: the chain's record of them is keyed
    ONCE, and one completed anywhere is not unknown any more."""
    from netops.engine.host import ONCE

    j, rb = _journal(tmp_path, RUNBOOK.replace(
        "steps:", "before:\n  - id: drain\n    local: echo d\nsteps:", 1))
    _run(j, rb, "r1", [["n1"], ["n2"]])
    _host(j, "r1", "n1", "failed")
    _step(j, "r1", "n1", 1, "drain", "unknown")
    _step(j, "r1", "n1", 2, "a", "changed")
    j.finish_run("r1", "halted")
    _run(j, rb, "r2", [["n1"], ["n2"]], resumed_from="r1")
    _host(j, "r2", "n2", "failed")
    _step(j, "r2", "n2", 1, "drain", "ok")
    _step(j, "r2", "n2", 2, "b", "unknown")
    j.finish_run("r2", "failed")
    state = resume_state(j, "r1")
    assert state.done == {ONCE: frozenset({"drain"}), "n1": frozenset({"a"})}
    assert state.unknown == {"n2": frozenset({"b"})}
    assert state.unfinished == ("n1", "n2")
