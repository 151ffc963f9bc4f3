"""Runbook loading: valid files load, every kind of bad input names file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jsonschema
import pytest

from netops.errors import LoadError, UserError
from netops.runbook.load import find_runbooks, load_all, load_runbook, read_document
from netops.runbook.model import json_schema
from netops.runbook.render import RenderError, evaluate_when, render_command, render_text

LIBRARY = Path(__file__).resolve().parents[2] / "netops" / "runbooks"

GOOD = """\
name: demo
description: a demo
params:
  iface: {type: string, default: eth0, help: the link}
  wait_for: {type: duration, default: 2m}
  token: {type: string, secret: true, default: s3cret}
rollout: {batch_size: [1, "50%"], max_fail: "10%", pause: 30s}
before:
  - id: leader
    check: etcdctl endpoint health
    group: etcd
steps:
  - id: link
    check: ip -o link show {{ iface }}
    expect: {rc: 0}
  - id: fix
    shell: ip link set {{ iface }} up
    unless: ip -o link show {{ iface }} | grep -q UP
    when: link.failed or leader.ok
  - sysctl: {key: net.ipv4.ip_forward, value: 1, persist: /etc/sysctl.d/90-x.conf}
  - file: /etc/x.conf
    lines: ["a={{ iface }}"]
    mode: "0644"
  - systemd: kubelet
    state: restarted
  - kubectl: cordon {{ host.name }}
  - reboot: 5m
  - wait: {check: "true", within: "{{ 1 }}", every: 1s}
verify:
  - check: test "{{ fix.status }}" != failed
"""


def write(tmp_path: Path, text: str, name: str = "demo.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def error_of(tmp_path: Path, text: str) -> LoadError:
    with pytest.raises(LoadError) as e:
        load_runbook(write(tmp_path, text))
    return e.value


def test_valid_runbook_loads_with_defaults_and_placement(tmp_path: Path) -> None:
    with pytest.raises(LoadError):  # a template in a duration field is not allowed
        load_runbook(write(tmp_path, GOOD))
    rb = load_runbook(write(tmp_path, GOOD.replace('"{{ 1 }}"', "10s")))
    assert rb.rollout.batch_size == (1, "50%") and rb.rollout.max_fail == "10%"
    assert rb.rollout.pause == 30.0
    assert rb.params["wait_for"].default == 120 and rb.params["token"].secret
    leader = rb.before[0]
    assert (leader.on, leader.group, leader.mutates) == ("once", "etcd", False)
    kinds = [(s.kind, s.on, s.mutates) for s in rb.steps]
    assert kinds == [("check", "node", False), ("shell", "node", True),
                     ("sysctl", "node", True), ("file", "node", True),
                     ("systemd", "node", True), ("kubectl", "controller", True),
                     ("reboot", "node", True), ("wait", "node", False)]
    assert rb.steps[1].args.unless.startswith("ip -o link")
    assert rb.steps[2].args.value == "1"
    assert rb.steps[6].args.timeout_s == 300.0
    assert rb.steps[7].args.timeout_s == 10.0 and rb.steps[7].args.interval_s == 1.0
    assert rb.steps[0].span.line == 13


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.yaml")), ids=lambda p: p.stem)
def test_library_runbooks_load_and_match_the_published_schema(path: Path) -> None:
    load_runbook(path)
    jsonschema.validate(read_document(path), json_schema())


def test_schema_rejects_what_the_loader_rejects(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, GOOD.replace('"{{ 1 }}"', "10s")))
    jsonschema.validate(doc, json_schema())
    doc["steps"][0]["frobnicate"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json_schema())


CASES = {
    "bad yaml": ("name: x\ndescription: y\nsteps:\n  - check: [unclosed\n", 5, 1,
                 "invalid YAML"),
    "unknown field": ("name: x\ndescription: y\nsteps:\n  - check: 'true'\n    expext: {}\n",
                      5, 5, "unknown field 'expext'"),
    "wrong type": ("name: x\ndescription: y\nsteps:\n  - check: 'true'\n    retries: many\n",
                   5, 14, "'retries' must be a whole number"),
    "undefined variable": ("name: x\ndescription: y\nsteps:\n  - shell: echo {{ nope }}\n",
                           4, 12, "undefined name 'nope'"),
    "when names unknown result": ("name: x\ndescription: y\nsteps:\n  - check: 'true'\n"
                                  "    when: ghost.failed\n", 5, 11, "undefined name 'ghost'"),
    "when names a later step": ("name: x\ndescription: y\nsteps:\n  - check: 'true'\n"
                                "    when: later.failed\n  - id: later\n    check: 'true'\n",
                                5, 11, "'later' is not registered before this step"),
    "unknown result attribute": ("name: x\ndescription: y\nsteps:\n  - {id: a, check: 'true'}\n"
                                 "  - check: 'true'\n    when: a.faild\n", 6, 11,
                                 "has no attribute 'faild'"),
    "unknown kind": ("name: x\ndescription: y\nsteps:\n  - shel: ls\n", 4, 5,
                     "unknown step kind 'shel'"),
    "duplicate key": ("name: x\ndescription: y\nsteps:\n  - check: 'true'\n    check: ls\n",
                      5, 5, "duplicate key 'check'"),
    "duplicate id": ("name: x\ndescription: y\nsteps:\n  - {id: a, check: 'true'}\n"
                     "  - {id: a, check: 'true'}\n", 5, 10, "duplicate step id 'a'"),
    "missing steps": ("name: x\ndescription: y\n", 1, 1, "missing required field 'steps'"),
    "mutating verify": ("name: x\ndescription: y\nsteps:\n  - check: 'true'\nverify:\n"
                        "  - shell: reboot\n", 6, 5, "verify steps are a read-only"),
    "once in steps": ("name: x\ndescription: y\nsteps:\n  - check: 'true'\n    on: once\n",
                      5, 9, "belongs in before"),
    "bad param default": ("name: x\ndescription: y\nparams:\n  n: {type: int, default: lots}\n"
                          "steps:\n  - check: 'true'\n", 4, 27, "is not an integer"),
    "bad template syntax": ("name: x\ndescription: y\nsteps:\n  - check: 'echo {{ a b }}'\n",
                            4, 12, "template syntax error"),
    # hostile input: each a clean error where it is written, never a traceback
    "impossible date": ("name: x\ndescription: 2024-13-45\n", 2, 14, "month must be in 1..12"),
    "python tag": ("name: !!python/name:os.system x\n", 1, 7,
                   "unknown tag '!!python/name:os.system'"),
    "tag on the wrong node": ("name: !!map x\n", 1, 7, "does not fit a scalar"),
    "ill-typed tag": ("name: x\ndescription: !!int many\n", 2, 14, "is not a valid !!int"),
    "recursive anchor": ("name: x\ndescription: y\nsteps: &s\n  - *s\n", 3, 8,
                         "the value would contain itself"),
    "alias bomb": ("name: x\n" + "".join(
        f"{k}: &{k} [{','.join([f'*{p}' if p else '1'] * 9)}]\n"
        for k, p in zip("abcdefghi", ["", *"abcdefgh"], strict=True)), 7, 4, "alias bomb"),
    "deep nesting": ("name: x\ndescription: " + "[" * 150 + "]" * 150 + "\n", 2, 113,
                     "nested deeper than 100 levels"),
    "nested template": ("name: x\ndescription: y\nsteps:\n  - check: '{{ " + "(" * 500 + "1"
                        + ")" * 500 + " }}'\n", 4, 12, "nested too deeply"),
    "mapping as a default": ("name: x\ndescription: y\nparams:\n  n: {type: duration, "
                             "default: {a: 1}}\nsteps:\n  - check: 'true'\n", 4, 32,
                             "default must be a value, got a mapping"),
    "infinite duration": ("name: x\ndescription: y\nsteps:\n  - check: 'true'\n"
                          "    timeout: .inf\n", 5, 14, "must be a duration"),
    "bad utf-8": (b"name: x\ndescription: caf\xe9\n", 2, 17, "byte 0xe9 at byte offset 24"),
    "utf-16": ("name: x\n".encode("utf-16"), 1, 1, "UTF-16 encoded"),
    "nul byte": (b"name: x\x00\n", 1, 8, "NUL byte at byte offset 7"),
    "control character": ("name: x\x1b[31m\n", 1, 8, "control character U+001B"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_runbooks_name_file_line_and_column(tmp_path: Path, case: str) -> None:
    text, line, col, words = CASES[case]
    if isinstance(text, bytes):
        (tmp_path / "demo.yaml").write_bytes(text)
        with pytest.raises(LoadError) as raised:
            load_runbook(tmp_path / "demo.yaml")
        e = raised.value
    else:
        e = error_of(tmp_path, text)
    assert (e.span.line, e.span.col) == (line, col), str(e) if e.span else e
    assert words in e.message
    assert str(e).startswith(f"{tmp_path / 'demo.yaml'}:{line}:{col}: ")


def test_unreadable_runbooks_are_user_errors(tmp_path: Path) -> None:
    for path in (tmp_path, tmp_path / "missing.yaml"):
        with pytest.raises(UserError, match="cannot read runbook"):
            load_runbook(path)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"description: '" + b"x" * (11 * 2**20) + b"'\n")
    with pytest.raises(LoadError, match="larger than 10 MiB"):
        load_runbook(big)


def test_a_long_line_is_quoted_around_the_column(tmp_path: Path) -> None:
    e = error_of(tmp_path, "name: x\ndescription: '" + "y" * 5000 + "'\nsteps: 1\n"
                 "bad: [" + "z, " * 3000 + "]\n")
    # both errors (steps: 1 too), each quoted around its column
    assert "unknown field 'bad'" in str(e) and len(str(e)) < 1500


def test_suggestions_and_caret(tmp_path: Path) -> None:
    e = error_of(tmp_path, "name: x\ndescription: y\nsteps:\n  - shel: ls\n")
    assert "did you mean 'shell'" in e.hint
    assert "   4 |   - shel: ls\n       |     ^" in str(e)


def test_load_all_reports_each_bad_file_and_name_mismatch(tmp_path: Path) -> None:
    write(tmp_path, "name: ok\ndescription: y\nsteps: [{check: 'true'}]\n", "ok.yaml")
    write(tmp_path, "name: other\ndescription: y\nsteps: [{check: 'true'}]\n", "wrong.yaml")
    write(tmp_path, "name: [\n", "broken.yaml")
    books, errors = load_all([tmp_path])
    assert list(books) == ["ok"]
    assert sorted(str(e.span.path.name) for e in errors if e.span) == ["broken.yaml",
                                                                        "wrong.yaml"]
    assert set(find_runbooks([tmp_path])) == {"ok", "wrong", "broken"}
    # only the runbooks asked for are read: the broken one elsewhere in the library is not
    books, errors = load_all([tmp_path], ["ok", "missing"])
    assert list(books) == ["ok"] and errors == []


# -- rendering --------------------------------------------------------------------------------
@pytest.mark.parametrize("evil", ["; rm -rf /", "$(touch /tmp/pwned)", "`id`", "a'b\"c", "x\ny"])
def test_interpolated_values_reach_the_shell_as_one_literal_word(evil: str) -> None:
    import subprocess

    cmd = render_command("printf %s {{ v }}", {"v": evil}).text
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True)
    assert out.stdout == evil


def test_raw_opts_out_and_secrets_are_masked() -> None:
    r = render_command("echo {{ a | raw }} {{ t }}", {"a": "$HOME", "t": "hunter2"},
                       frozenset({"hunter2"}))
    assert r.text == "echo $HOME hunter2" and "hunter2" not in r.display


def test_text_rendering_does_not_quote_and_undefined_fails() -> None:
    assert render_text("/etc/{{ f }}.conf", {"f": "a b"}) == "/etc/a b.conf"
    with pytest.raises(RenderError):
        render_text("{{ missing }}", {})
    assert evaluate_when("x.failed and n > 2", {"x": type("R", (), {"failed": True})(), "n": 3})
    with pytest.raises(RenderError):
        evaluate_when("nope.failed", {})


def test_jinja_globals_known_without_jinja_match_jinja() -> None:
    from netops.runbook.render import JINJA_GLOBALS, environment

    assert set(environment(False).globals) == JINJA_GLOBALS


def test_a_runbook_of_plain_commands_loads_and_renders_without_importing_jinja(
        tmp_path: Path) -> None:
    import subprocess
    import sys

    write(tmp_path, "name: plain\ndescription: y\nsteps: [{check: hostname}]\n", "plain.yaml")
    code = ("import sys; from pathlib import Path; from netops.runbook.load import load_runbook; "
            "from netops.runbook.render import render_command; "
            f"rb = load_runbook(Path({str(tmp_path / 'plain.yaml')!r})); "
            "assert render_command(rb.steps[0].args.command, {}).text == 'hostname'; "
            "print('jinja2' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_template_syntax_errors_name_the_step(tmp_path: Path) -> None:
    path = write(tmp_path, "name: bad\ndescription: y\nsteps: [{check: 'echo {{ x '}]\n",
                 "bad.yaml")
    with pytest.raises(LoadError, match="template syntax error"):
        load_runbook(path)
