"""Issue 14, promises 4 and 5 on a lab node through the real CLI: a `secret: true` param never
leaves in any form (terminal, `-v`, `--json`, a dry run's diff, the journal, `report`,
`history`), and escape sequences a node prints never reach a terminal or a log as such."""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from netops.lab import Lab
from netops.masking import MIN_FRAGMENT, secret_forms
from tests.integration.helpers import Cli, Result, lab_for

pytestmark = pytest.mark.lab
NAMES = ["chick1"]

SECRET = "it's a \"secret\" $HOME `id` \\ back\\slash\nsecond line of it\n\tthird <&> line"
"""Spaces, both quotes, `$`, backticks, backslashes, newlines, a tab and HTML-escaped chars."""

SECRETIVE = """\
    name: secretive
    description: a secret in a file's content and in a failing check's output
    params:
      token: {type: string, secret: true, required: true}
    steps:
      - id: conf
        name: write the config
        file:
          path: /tmp/netops-secret.conf
          content: "user: admin\\ntoken: {{ token }}\\nend\\n"
          mode: "0600"
      - id: echo
        name: the node prints the token in every shape
        check: |
          printf 'raw: %s\\n' {{ token }}
          printf 'quoted: %s\\n' {{ token | quote | quote }}
          printf 'json: %s\\n' {{ token | tojson | quote }}
          printf 'err: %s\\n' {{ token }} >&2
          exit 1
        fail: true
"""

HOSTILE_OUT = r"\033]0;TITLE\007\033[2J\033[1A\033P1$r\033\\\302\233" + r"31m\r\b\177"
"""printf-escaped: OSC set-title + BEL, CSI erase screen and cursor-up, DCS + ST, C1 CSI (as
its UTF-8 encoding, U+009B), a carriage return, a backspace and DEL."""

HOSTILE = f"""\
    name: hostile
    description: a check whose output is escape sequences
    steps:
      - id: noisy
        name: the node prints escapes
        check: printf 'out {HOSTILE_OUT} x\\n'; printf 'err {HOSTILE_OUT} y\\n' >&2; exit 1
        fail: true
"""

FOREIGN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""What a terminal acts on (newlines and tabs aside); ESC is allowed only in Rich's SGR."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from lab_for(tmp_path_factory.mktemp("secrets"), NAMES, 171)


def write(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def shapes(value: str) -> set[str]:
    """`value` as printed raw, shell-quoted, JSON-escaped (plain and Jinja's `tojson`) and
    repr'd (told here on their own, not by `netops.masking`, which is what is tested)."""
    tojson = json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")\
        .replace("&", "\\u0026").replace("'", "\\u0027")
    return {value, shlex.quote(value), json.dumps(value)[1:-1], tojson[1:-1], repr(value)[1:-1],
            value.replace("'", "'\"'\"'")}


def forms() -> set[str]:
    """Every shape of SECRET and of each of its lines that must appear nowhere (and what
    `mask` itself knows of, for good measure)."""
    lines = {ln.strip() for ln in SECRET.splitlines() if len(ln.strip()) >= MIN_FRAGMENT}
    found = shapes(SECRET).union(*(shapes(ln) for ln in lines))
    return found | set(secret_forms(frozenset({SECRET})))


def assert_no_secret(where: str, text: str) -> None:
    found = [f for f in forms() if f in text]
    assert not found, f"{where} leaks {found!r}:\n{text}"


def journal_dump(cli: Cli) -> str:
    """Every row of every table of the SQLite journal, as text."""
    db = sqlite3.connect(cli.home / "journal.db")
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [repr(row) + str(row) for t in tables for row in db.execute(f"SELECT * FROM {t}")]
    finally:
        db.close()
    assert rows, "an empty journal"
    return "\n".join(rows)


def outputs(r: Result) -> str:
    return r.stdout + "\n" + r.stderr


def test_a_secret_never_leaves(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    rb = str(write(tmp_path / "secretive.yaml", SECRETIVE))
    lab.node_exec("chick1", "rm -f /tmp/netops-secret.conf")
    var = f"token={SECRET}"
    runs = {
        "dry run": cli("run", rb, "--nodes", "chick1", "--var", var, "--dry-run", "--yes"),
        "dry run -v": cli("-v", "run", rb, "--nodes", "chick1", "--var", var, "--dry-run",
                          "--yes"),
        "dry run --json": cli("run", rb, "--nodes", "chick1", "--var", var, "--dry-run",
                              "--json", "--yes"),
        "dry run styled": cli("run", rb, "--nodes", "chick1", "--var", var, "--dry-run",
                              "--yes", FORCE_COLOR="1"),
    }
    dry = runs["dry run --json"]
    assert dry.rc == 1, outputs(dry)
    steps = {s["id"]: s for s in dry.json["hosts"]["chick1"]["steps"]}
    assert steps["conf"]["status"] == "would-change"
    assert "+user: admin" in steps["conf"]["diff"] and "+***" in steps["conf"]["diff"]
    assert steps["echo"]["status"] == "failed" and "raw: ***" in steps["echo"]["stdout"]
    assert "+user: admin" in runs["dry run"].stderr  # the preview shows the diff, masked

    runs["run"] = cli("run", rb, "--nodes", "chick1", "--var", var, "--yes")
    runs["run -v"] = cli("-v", "run", rb, "--nodes", "chick1", "--var", var, "--yes")
    runs["run --json"] = cli("run", rb, "--nodes", "chick1", "--var", var, "--json", "--yes")
    runs["run styled -v"] = cli("-v", "run", rb, "--nodes", "chick1", "--var", var, "--yes",
                                FORCE_COLOR="1")
    assert runs["run"].rc == 1 and "chick1" in runs["run"].stderr
    # the node got the real value: masking is only for what is shown and stored
    got = lab.node_exec("chick1", "cat /tmp/netops-secret.conf").stdout
    assert got == f"user: admin\ntoken: {SECRET}\nend\n"
    assert "+***" not in json.dumps(runs["run --json"].json)  # written once, then as desired

    history = cli("history", "--json")
    ids = [r["run_id"] for r in history.json["runs"]]
    assert len(ids) == 8
    runs["history"] = cli("history")
    runs["history --json"] = history
    runs["history styled"] = cli("history", FORCE_COLOR="1")
    for run_id in ids:
        runs[f"report {run_id}"] = cli("report", run_id)
        runs[f"report --json {run_id}"] = cli("report", run_id, "--json")
        assert runs[f"report {run_id}"].rc == 0
    for where, r in runs.items():
        assert_no_secret(where, outputs(r))
    assert_no_secret("the journal", journal_dump(cli))


RICH_OWN = re.compile("\x1b\\[(?:[0-9;]*m|\\?25[lh]|2K|[0-9]*A)")
"""What Rich itself writes on a terminal: colours, and a live view's cursor hiding/moves."""
NODE_RAW = ("\x1b]0;TITLE", "\x07", "\x1b[2J", "\x1bP1$r", "\x1b\\", "\x9b", "\r", "\x08",
            "\x7f")
"""The node's sequences as they would arrive unneutralised."""


def assert_terminal_safe(where: str, r: Result) -> None:
    for stream, text in (("stdout", r.stdout), ("stderr", r.stderr)):
        for raw in NODE_RAW:
            assert raw not in text, f"{where} {stream}: {raw!r} reached it:\n{text!r}"
        found = FOREIGN.search(RICH_OWN.sub("", text).replace("\n", "").replace("\t", ""))
        assert not found, f"{where} {stream}: {found!r} reached it:\n{text!r}"


def test_escape_sequences_from_a_node_never_reach_the_terminal(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "runbooks" / "hostile.yaml", HOSTILE)  # ./runbooks, for diagnose
    results: dict[str, Result] = {}
    for label, env in (("plain", {}), ("styled", {"FORCE_COLOR": "1"})):
        results[f"run {label}"] = cli("run", "hostile", "--nodes", "chick1", "--yes", **env)
        results[f"run -v {label}"] = cli("-v", "run", "hostile", "--nodes", "chick1", "--yes",
                                         **env)
        results[f"dry run {label}"] = cli("run", "hostile", "--nodes", "chick1", "--dry-run",
                                          **env)
        results[f"exec {label}"] = cli("exec", "--nodes", "chick1", "--",
                                       f"printf 'o {HOSTILE_OUT}\\n'; "
                                       f"printf 'e {HOSTILE_OUT}\\n' >&2; exit 3", **env)
        results[f"exec -v {label}"] = cli("-v", "exec", "--nodes", "chick1", "--",
                                          f"printf '{HOSTILE_OUT}\\n' >&2; exit 3", **env)
        results[f"diagnose {label}"] = cli("diagnose", "--nodes", "chick1", "-r", "hostile",
                                           "--evidence", **env)
        results[f"history {label}"] = cli("history", **env)
    run_id = cli("history", "--json").json["runs"][0]["run_id"]
    results["report"] = cli("report", run_id)
    assert results["run plain"].rc == 1, results["run plain"].stderr
    assert "the node prints escapes" in results["run plain"].stderr
    assert "\\x1b]0;TITLE" in results["run -v plain"].stderr  # shown, as visible escapes
    assert "\\x1b[2J" in results["exec -v styled"].stderr
    assert "\\x1b" in results["report"].stdout
    assert "\\x1b]0;TITLE" in results["diagnose plain"].stderr
    for where, r in results.items():
        assert_terminal_safe(where, r)
    # --json keeps the node's bytes, JSON-escaped (a consumer gets what the node printed)
    j = cli("run", "hostile", "--nodes", "chick1", "--json", "--yes")
    assert "\x1b]0;TITLE" in j.json["hosts"]["chick1"]["steps"][0]["stdout"]
    assert not FOREIGN.search(j.stdout.replace("\n", ""))
