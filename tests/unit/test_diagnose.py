"""How diagnose turns one host's dry-run result into ok / broken / unknown / unreachable."""

from __future__ import annotations

from pathlib import Path

import pytest

from netops.diagnose import finding
from netops.engine.result import HostResult, Status, StepResult
from netops.runbook.load import load_runbook

BOOK = """\
name: rb
description: d
steps:
  - {id: probe, check: 'true'}
  - {id: must, check: 'true', fail: true}
  - {id: api, check: kubectl get node x, on: controller}
  - {id: fix, shell: 'true', unless: 'false'}
"""


def step(sid: str, status: Status, *, finding: bool = False, rc: int | None = 0) -> StepResult:
    return StepResult(sid, sid, status, rc=rc, note=f"{sid} note", finding=finding)


@pytest.mark.parametrize("steps, verdict", [
    ([step("probe", Status.OK), step("fix", Status.OK)], "ok"),
    ([step("probe", Status.OK, finding=True), step("fix", Status.WOULD_CHANGE)], "broken"),
    ([step("must", Status.FAILED, finding=True, rc=1)], "broken"),
    # the API is down: what the node checks found before still counts, nothing else does
    ([step("probe", Status.OK, finding=True), step("api", Status.FAILED, rc=1)], "broken"),
    ([step("probe", Status.OK), step("api", Status.FAILED, rc=1)], "unknown"),
    ([step("must", Status.FAILED, rc=None)], "unknown"),  # could not run (timed out, say)
    ([step("probe", Status.UNREACHABLE, rc=None)], "unreachable"),
    ([], "unknown"),  # not run: the run halted before this host
])
def test_verdicts(tmp_path: Path, steps: list[StepResult], verdict: str) -> None:
    (tmp_path / "rb.yaml").write_text(BOOK)
    rb = load_runbook(tmp_path / "rb.yaml")
    status = {"ok": Status.OK, "broken": Status.WOULD_CHANGE, "unreachable": Status.UNREACHABLE,
              "unknown": Status.FAILED}[verdict]
    if not steps:
        status = Status.NOT_RUN
    elif any(s.status is Status.FAILED for s in steps):
        status = Status.FAILED
    result = finding(rb, HostResult("n1", 1, status, tuple(steps)), "halted")
    assert result.status == verdict
    if verdict == "broken":
        assert "note" in result.evidence
