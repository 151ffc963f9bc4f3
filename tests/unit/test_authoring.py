"""Runbook authoring (issue 15 item 7): templates wherever a string reaches a node or a
comparison, every error of a file at once, exit codes that mean "the command did not run" are
errors, and the published schema holds for the shipped runbooks under YAML 1.1 and 1.2."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from netops.engine.dispatch import run_kind
from netops.engine.result import Status
from netops.errors import LoadError
from netops.library import runbook_dirs
from netops.runbook.load import LoadErrors, find_runbooks, load_runbook, read_document
from netops.runbook.model import json_schema
from netops.runbook.render import render_command, render_text
from netops.steps.base import StepContext
from netops.timeline import markdown
from netops.transport.local import LocalTransport

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp: Path, text: str, name: str = "demo") -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return path


def _run(tmp: Path, body: str, variables: dict[str, Any] | None = None) -> Any:
    """Load a one-step runbook and run its step on the controller (a real `sh`)."""
    rb = load_runbook(_write(tmp, "name: demo\ndescription: d\nparams:\n  value: {type: string, "
                             "default: abc}\nsteps:\n" + body))
    step = rb.steps[0]
    ctx = StepContext(transport=LocalTransport(), dry_run=False, timeout=10, become=False)
    env = {"value": "abc", **(variables or {})}
    return run_kind(step, ctx, lambda t: render_command(t, env).text,
                    lambda t: render_text(t, env))


# -- templates -------------------------------------------------------------------------------
def test_expect_strings_are_templates(tmp_path: Path) -> None:
    ok = _run(tmp_path, "  - check: echo abc\n    expect: {stdout: '{{ value }}'}\n")
    assert ok.status is Status.OK and not ok.finding
    found = _run(tmp_path, "  - check: echo abd\n    expect: {stdout_contains: '{{ value }}'}\n")
    assert found.finding and "'abc'" in found.note
    regex = _run(tmp_path, "  - check: echo xabcx\n    expect:\n"
                 "      stdout_regex: 'x{{ value }}x$'\n")
    assert regex.status is Status.OK and not regex.finding


def test_expect_templates_are_checked_at_load(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="undefined name 'valeu'") as e:
        load_runbook(_write(tmp_path, "name: demo\ndescription: d\nparams:\n  value: "
                            "{type: string}\nsteps:\n  - check: 'true'\n"
                            "    expect: {stdout: '{{ valeu }}'}\n"))
    assert e.value.span is not None and e.value.span.line == 7


@pytest.mark.parametrize(("field", "text"), [
    ("group", "  - shell: 'true'\n    where: once\n    group: '{{ value }}'\n"),
    ("mode", "  - file: /tmp/x\n    content: x\n    mode: '{{ value }}'\n"),
])
def test_a_template_where_none_is_rendered_is_refused(tmp_path: Path, field: str,
                                                      text: str) -> None:
    phase = "before" if field == "group" else "steps"
    body = f"name: demo\ndescription: d\nparams:\n  value: {{type: string}}\n{phase}:\n" + text
    if phase == "before":
        body += "steps:\n  - check: 'true'\n"
    with pytest.raises(LoadError, match=f"'{field}' is used as written, not templated"):
        load_runbook(_write(tmp_path, body))


# -- every error of a file -------------------------------------------------------------------
def test_validate_reports_every_error_in_file_order(tmp_path: Path) -> None:
    text = """\
name: demo
description: d
colour: red
steps:
  - check: echo {{ nope }}
  - chekc: true
  - shell: 'true'
    timeout: soon
  - check: 'true'
    expect: {rc: 0, stdout_regex: '('}
  - id: later
    check: echo {{ later.stdout }}
"""
    with pytest.raises(LoadErrors) as e:
        load_runbook(_write(tmp_path, text))
    lines = [err.span.line for err in e.value.errors if err.span]
    assert lines == sorted(lines) and len(lines) == 6, str(e.value)
    shown = str(e.value)
    for part in ("unknown field 'colour'", "undefined name 'nope'", "unknown step kind 'chekc'",
                 "'timeout' must be a duration", "bad regex", "'later' is not registered"):
        assert part in shown
    assert len(shown.splitlines()) >= 6 * 3  # each error with its quoted line and caret


def test_cli_validate_prints_every_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = _write(tmp_path, "name: demo\ndescription: d\nsteps:\n  - check: 'true'\n"
                  "    tiemout: 1s\n  - check: 'true'\n    retries: -1\n")
    done = subprocess.run([sys.executable, "-m", "netops", "validate", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert f"{path}:5:5: " in done.stderr and f"{path}:7:14: " in done.stderr, done.stderr
    assert "0 valid, 1 invalid" in done.stderr


def test_a_broken_step_does_not_hide_the_names_it_registers(tmp_path: Path) -> None:
    text = ("name: demo\ndescription: d\nsteps:\n  - id: probe\n    check: 'true'\n"
            "    timeout: never\n  - check: 'true'\n    when: probe.failed\n")
    with pytest.raises(LoadError) as e:
        load_runbook(_write(tmp_path, text))
    assert "'timeout' must be" in str(e.value)
    assert not isinstance(e.value, LoadErrors)  # one error: the `when` reading it is fine


# -- `where:` (and the old `on:`) ----------------------------------------------------------------
def test_where_and_the_old_on_key(tmp_path: Path) -> None:
    base = "name: demo\ndescription: d\nsteps:\n  - check: 'true'\n    {key}: controller\n"
    for key in ("where", "on"):
        rb = load_runbook(_write(tmp_path, base.format(key=key)))
        assert rb.steps[0].on == "controller"
    with pytest.raises(LoadError, match="old name of 'where'"):
        load_runbook(_write(tmp_path, base.format(key="where") + "    on: node\n"))
    with pytest.raises(LoadError, match="`where: once` belongs in before"):
        load_runbook(_write(tmp_path, base.format(key="where").replace("controller", "once")))


# -- exit codes that say the command did not run ---------------------------------------------
@pytest.mark.parametrize(("command", "why"), [
    ("no-such-command-netops", "command not found (rc 127)"),
    ("{tmp}/plain.txt", "command not executable (rc 126)"),
    ("kill -KILL $$", "killed by SIGKILL (rc 137)"),
])
def test_a_check_that_could_not_run_is_an_error(tmp_path: Path, command: str, why: str) -> None:
    (tmp_path / "plain.txt").write_text("text\n")
    command = command.format(tmp=tmp_path)
    out = _run(tmp_path, f"  - check: '{command}'\n    expect: {{rc: 1}}\n")
    assert out.status is Status.FAILED and not out.finding
    assert out.note.startswith(why)
    if out.rc >= 0:  # (a local signal is reported as minus its number)
        expected = _run(tmp_path, f"  - check: '{command}'\n    expect: {{rc: {out.rc}}}\n")
        assert expected.status is Status.OK  # the author asked for exactly that code


def test_a_guard_that_could_not_run_is_an_error(tmp_path: Path) -> None:
    out = _run(tmp_path, "  - shell: 'touch changed'\n    unless: no-such-guard-netops\n")
    assert out.status is Status.FAILED and "guard `unless`: command not found" in out.note
    assert not (Path.cwd() / "changed").exists()
    waited = _run(tmp_path, "  - wait: no-such-command-netops\n    within: 30s\n")
    assert waited.status is Status.FAILED and "command not found" in waited.note


def test_report_timeline_shows_an_unexpected_exit_code_as_an_error() -> None:
    now = time.time()
    from netops.journal import HostRow, RunRow, StepRow

    run = RunRow("r1", "demo", "p", "0" * 64, "inv", "", "n1", {}, False, "failed", "", "op",
                 "c", None, (), (("n1",),), None, now, now + 1, {})
    steps = [StepRow("r1", "n1", 1, "probe", status="failed", rc=127, command="nosuch",
                     note="command not found (rc 127): sh: nosuch: not found", started=now,
                     stderr="sh: nosuch: not found")]
    text = markdown(run, [HostRow("r1", "n1", 1, "failed")], steps)
    assert "| probe | failed: command not found (rc 127) | nosuch |" in text
    assert "command not found" in text.split("## What was found")[1].split("##")[0]


# -- the published schema ------------------------------------------------------------------------
class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2's core schema: only true/false (any case) are booleans, so `on:` is a key."""


_Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _first in "tTfF":
    _Yaml12Loader.yaml_implicit_resolvers.setdefault(_first, []).insert(0, (
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")))


def _load(text: str, loader: type[yaml.SafeLoader]) -> Any:
    reader = loader(text)
    try:
        return reader.get_single_data()
    finally:
        reader.dispose()


def _shipped() -> dict[str, Path]:
    return find_runbooks(runbook_dirs([])[-1:])


def test_the_library_is_shipped() -> None:
    assert len(_shipped()) >= 10


@pytest.mark.parametrize("loader", [yaml.SafeLoader, _Yaml12Loader], ids=["pyyaml", "yaml1.2"])
def test_schema_validates_every_shipped_runbook(loader: type[yaml.SafeLoader]) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    for name, path in _shipped().items():
        doc = _load(path.read_text(), loader)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(doc)]
        assert not errors, f"{name}: {errors[:5]}"
        assert doc == read_document(path) or loader is yaml.SafeLoader


def test_the_old_on_key_is_what_pyyaml_breaks() -> None:
    """Why the key is `where`: PyYAML reads a bare `on:` as the boolean true."""
    assert yaml.safe_load("on: controller") == {True: "controller"}
    assert _load("on: controller", _Yaml12Loader) == {"on": "controller"}
    schema = json_schema()
    step = schema["$defs"]["step"]["oneOf"][0]["properties"]
    assert step["where"]["enum"] == ["node", "controller", "once"] and step["on"]["deprecated"]
