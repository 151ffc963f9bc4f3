"""`below:` on a param (issue 18): contradictory timings are refused at load (defaults, so
`netops validate` fails) and at run time (--var values), before anything runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netops.engine.prepare import parse_vars
from netops.errors import LoadError, UserError
from netops.library import packaged_dir
from netops.runbook.load import load_runbook

RUNBOOK = """\
name: demo
description: d
params:
  settle: {{type: duration, default: {settle}}}
  fresh_within: {{type: duration, default: 30s, below: {below}}}
steps:
  - id: a
    check: "true"
"""


def write(tmp_path: Path, **fmt: str) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(textwrap.dedent(RUNBOOK.format(**fmt)))
    return path


def test_contradictory_defaults_fail_validation(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"fresh_within \(30\) must be below settle \(20\)"):
        load_runbook(write(tmp_path, settle="20s", below="settle"))
    with pytest.raises(LoadError, match="must name another int or duration param"):
        load_runbook(write(tmp_path, settle="60s", below="nosuch"))
    assert load_runbook(write(tmp_path, settle="60s", below="settle")).params[
        "fresh_within"].below == "settle"


def test_contradictory_vars_are_refused() -> None:
    rb = load_runbook(packaged_dir() / "fix-calico.yaml")
    assert parse_vars(rb, ["settle=4s", "fresh_within=3s"])[0]["fresh_within"] == 3
    for pairs in (["settle=4s", "fresh_within=5s"], ["settle=4s", "fresh_within=4s"],
                  ["fresh_within=90s"]):
        with pytest.raises(UserError, match="must be below settle"):
            parse_vars(rb, pairs)
