"""A runbook's `tests:` (lab scenarios for `netops lab verify`): loading, errors with
file:line:col, the published schema, and how scenarios are placed on a lab."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml

from netops.errors import LoadError, UserError
from netops.lab.verify import Case, cases, lab_size, rounds
from netops.runbook.load import load_all, load_runbook
from netops.runbook.model import json_schema

LIBRARY = Path(__file__).resolve().parents[2] / "netops" / "runbooks"
HEAD = """\
name: demo
description: a demo
params:
  limit: {type: int, default: 5}
  settle: {type: duration, default: 10s}
  fresh: {type: duration, default: 5s, below: settle}
steps:
  - check: "true"
"""
SCENARIOS = """\
tests:
  - name: off-now
    inject: [sysctl -qw net.ipv4.ip_forward=0]
    healthy: [test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1]
    vars: {limit: "7", settle: 4s, fresh: 3s}
  - name: report-only
    lab_fault: conntrack-near-full
    fixed: false
    persists: false
"""


def load(tmp_path: Path, tests: str) -> Any:
    p = tmp_path / "demo.yaml"
    p.write_text(HEAD + textwrap.dedent(tests))
    return load_runbook(p)


def errors(tmp_path: Path, tests: str) -> list[str]:
    with pytest.raises(LoadError) as e:
        load(tmp_path, tests)
    return str(e.value).splitlines()


def test_scenarios_load_with_typed_vars(tmp_path: Path) -> None:
    rb = load(tmp_path, SCENARIOS)
    first, second = rb.tests
    assert first.name == "off-now" and first.inject == ("sysctl -qw net.ipv4.ip_forward=0",)
    assert first.vars == {"limit": 7, "settle": 4, "fresh": 3}
    assert first.var_args() == ["limit=7", "settle=4", "fresh=3"]
    assert first.fixed and first.span.line == 10
    assert second.lab_fault == "conntrack-near-full" and not second.fixed
    assert not second.persists and second.healthy == ()


@pytest.mark.parametrize(("tests", "where", "message"), [
    ("tests: {a: 1}\n", "9:8", "'tests' must be a list of scenarios"),
    ("tests:\n  - inject: [x]\n    healthy: [y]\n", "10:5", "missing required field 'name'"),
    ("tests:\n  - name: Bad-Name\n    inject: [x]\n    healthy: [y]\n", "10:11",
     "name must be lower-case"),
    ("tests:\n  - name: a\n    healthy: [y]\n", "10:5", "nothing breaks the node"),
    ("tests:\n  - name: a\n    inject: [x]\n", "10:5", "needs `healthy:`"),
    ("tests:\n  - name: a\n    inject: x\n    healthy: [y]\n", "11:13",
     "'inject' must be a list of strings"),
    ("tests:\n  - name: a\n    inject: [x]\n    healthy: [y]\n    persists: false\n", "13:5",
     "'persists' is for report-only"),
    ("tests:\n  - name: a\n    inject: [x]\n    healthy: [y]\n    vars: {limt: 1}\n", "13:12",
     "no param 'limt'"),
    ("tests:\n  - name: a\n    inject: [x]\n    healthy: [y]\n    vars: {limit: many}\n",
     "13:19", "var 'limit': 'many' is not an integer"),
    ("tests:\n  - name: a\n    inject: [x]\n    healthy: [y]\n    vars: {fresh: 20s}\n",
     "13:11", "fresh (20) must be below settle (10)"),
    ("tests:\n  - name: a\n    inject: [x]\n    healthy: [y]\n    inject_: [z]\n", "13:5",
     "unknown field 'inject_'"),
    ("tests:\n  - name: a\n    lab_fault: Forward Drop\n", "11:16", "is not a fault name"),
    ("tests:\n  - name: a\n    inject: [x]\n    healthy: [y]\n  - name: a\n    inject: [x]\n"
     "    healthy: [y]\n", "13:11", "duplicate scenario name 'a' (first at line 10)"),
])
def test_bad_scenarios_name_file_line_column(tmp_path: Path, tests: str, where: str,
                                             message: str) -> None:
    found = [line for line in errors(tmp_path, tests) if message in line]
    assert found, errors(tmp_path, tests)
    assert found[0].startswith(f"{tmp_path / 'demo.yaml'}:{where}: "), found[0]


def test_every_bad_scenario_is_reported_at_once(tmp_path: Path) -> None:
    got = errors(tmp_path, "tests:\n  - name: a\n  - name: B\n    inject: [x]\n"
                           "    healthy: [y]\n  - 3\n")
    lines = [line.split(": ", 1)[0].rsplit(":", 2)[1] for line in got
             if line.startswith(str(tmp_path))]
    assert lines == ["10", "10", "11", "14"]  # a: no inject, no healthy; B; 3


def test_validate_checks_tests(tmp_path: Path) -> None:
    bad = tmp_path / "demo.yaml"
    bad.write_text(HEAD + "tests:\n  - name: a\n    inject: [x]\n")
    done = subprocess.run([sys.executable, "-m", "netops", "validate", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{bad}:10:5: test 'a': a scenario the run fixes needs `healthy:`" in done.stderr


def test_schema_has_tests_and_checks_them(tmp_path: Path) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    good = yaml.safe_load(HEAD + SCENARIOS)
    assert not list(validator.iter_errors(good))
    for bad in ({"name": "a", "healthy": ["x"]}, {"name": "a", "inject": "x"},
                {"name": "A", "inject": ["x"]}, {"name": "a", "inject": ["x"], "fixd": 1}):
        doc = {**good, "tests": [bad]}
        assert list(validator.iter_errors(doc)), bad
    out = subprocess.run([sys.executable, "-m", "netops", "schema"], capture_output=True,
                         text=True, timeout=60).stdout
    assert '"lab_fault"' in out and '"persists"' in out


def test_every_shipped_runbook_carries_scenarios() -> None:
    books, errs = load_all([LIBRARY])
    assert not errs and len(books) >= 14
    assert [n for n, rb in books.items() if not rb.tests] == []
    assert len(cases(books)) >= len(books)


def test_a_runbook_without_scenarios_or_with_an_unknown_lab_fault_is_bad_input(
        tmp_path: Path) -> None:
    rb = load(tmp_path, "")
    with pytest.raises(UserError, match="has no `tests:` scenario") as no_tests:
        cases({"demo": rb})
    assert str(no_tests.value).startswith(f"{tmp_path / 'demo.yaml'}:1:1: runbook demo ")
    rb = load(tmp_path, "tests:\n  - name: a\n    lab_fault: no-such-fault\n    fixed: false\n")
    with pytest.raises(LoadError, match="unknown lab fault 'no-such-fault'") as e:
        cases({"demo": rb})
    assert e.value.span is not None and e.value.span.line == 10


def fake(book: str, scenario: str) -> Case:
    return Case(SimpleNamespace(name=book), SimpleNamespace(name=scenario))  # type: ignore[arg-type]


def test_rounds_are_few_balanced_and_one_scenario_of_a_runbook_each() -> None:
    todo = [fake(f"rb{i}", f"s{j}") for i in range(14) for j in range(2 if i % 5 == 0 else 1)]
    placed = rounds(todo, 7)
    assert [len(r) for r in placed] == [6, 6, 5]
    assert sorted(c.label for r in placed for c in r) == sorted(c.label for c in todo)
    for r in placed:
        assert len({c.runbook.name for c in r}) == len(r)
    assert lab_size(todo) == 7
    three = [fake("rb", f"s{j}") for j in range(3)]
    assert [len(r) for r in rounds(three, 7)] == [1, 1, 1] and lab_size(three) == 3
    assert rounds([], 7) == [] and lab_size([]) == 3
    assert lab_size(todo, slots=4) == 5  # 17 cases, 5 rounds of at most 4: 4+4+3+3+3
