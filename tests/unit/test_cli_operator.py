"""Issue 15, without a lab: answers on stdout and complete off a terminal, where runbooks come
from, --version, the safety gates of a disruptive runbook, the live view's clock."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netops.engine.events import HostFinished, StepFinished, StepStarted
from netops.engine.result import HostResult, Status, StepResult
from netops.plain import PlainConsole, print_table
from netops.report import ExecOutput, LiveView

INVENTORY = "all:\n  vars: {ansible_host: 127.0.0.1, ansible_port: 1}\n  children:\n" \
            "    workers:\n      hosts: {w1: {}, w2: {}}\n"
DISRUPTIVE = "name: bounce\ndescription: d\ndisruptive: true\nsteps:\n  - shell: 'true'\n"


def netops(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m netops ARGS` off a terminal (pipes on every stream, no stdin)."""
    full = {**os.environ, "NETOPS_INVENTORY": str(cwd / "inventory.yaml"),
            "NETOPS_JOURNAL": str(cwd / "journal.db"), "XDG_CONFIG_HOME": str(cwd / "config"),
            **env}
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        full.pop(name, None)
    return subprocess.run([sys.executable, "-m", "netops", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60, env=full, stdin=subprocess.DEVNULL)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    return tmp_path


def test_plain_tables_are_complete_and_aligned() -> None:
    out = io.StringIO()
    long = "x" * 300
    print_table(("a", "bb", "c"), [("1", "", long), ("22", ("ok", "green"), "two\nlines")],
                title="not shown off a terminal", file=out)
    lines = out.getvalue().splitlines()
    assert lines == ["a   bb  c", f"1   -   {long}", "22  ok  two; lines"]


def test_plain_tables_neutralise_node_text() -> None:
    out = io.StringIO()
    print_table(("host", "detail"), [("n1", "\x1b[2Jcleared")], file=out)
    assert "\x1b" not in out.getvalue() and "\\x1b[2J" in out.getvalue()


def test_exec_output_is_pdsh_style_with_stderr_marked() -> None:
    out = io.StringIO()
    step = StepResult("exec", "cmd", Status.FAILED, rc=1, stdout="a\n\nb\n", stderr="oops\x1b\n")
    ExecOutput(out).on_event(HostFinished(HostResult("n1", 1, Status.FAILED, (step,))))
    assert out.getvalue() == "n1: a\nn1: \nn1: b\nn1:err: oops\\x1b\n"


def test_a_finished_host_stops_its_clock() -> None:
    """A host that finished keeps the time it took while others run or a --pause waits."""
    now = [0.0]
    view = LiveView(PlainConsole(io.StringIO()), clock=lambda: now[0])
    step = StepResult("s", "s", Status.OK)
    view.on_event(StepStarted("n1", "s", "s"))
    now[0] = 1.5
    view.on_event(StepFinished("n1", step))
    now[0] = 2.0
    view.on_event(HostFinished(HostResult("n1", 1, Status.OK, (step,))))
    now[0] = 500.0
    assert view._rows["n1"].elapsed(now[0]) == 2.0
    view.on_event(StepStarted("n2", "s", "s"))
    now[0] = 503.0
    assert view._rows["n2"].elapsed(now[0]) == 3.0  # a running host still counts


def test_version(home: Path) -> None:
    from netops import __version__

    r = netops(home, "--version")
    assert r.returncode == 0 and r.stdout == f"netops {__version__}\n"


def test_list_says_where_each_runbook_came_from(home: Path) -> None:
    (home / "runbooks").mkdir()
    (home / "runbooks" / "check-ip-forward.yaml").write_text(
        "name: check-ip-forward\ndescription: local override.\nsteps:\n  - check: 'true'\n")
    mine = home / "config" / "netops" / "runbooks"
    mine.mkdir(parents=True)
    (mine / "my-check.yaml").write_text(
        "name: my-check\ndescription: the operator's own.\nsteps:\n  - check: 'true'\n")
    r = netops(home, "list")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert "./runbooks" in rows["check-ip-forward"] and "local override." in \
        rows["check-ip-forward"]
    assert f"user ({mine})" in rows["my-check"]
    assert "packaged" in rows["fix-calico"] and "yes" in rows["fix-calico"].split()
    j = netops(home, "list", "--json")
    by = {b["name"]: b for b in __import__("json").loads(j.stdout)["runbooks"]}
    assert by["fix-calico"]["source"] == "packaged" and by["fix-calico"]["disruptive"] is True
    missing = netops(home, "--runbooks", str(home / "nope"), "list")
    assert missing.returncode == 2 and "no such directory" in missing.stderr


def test_show_prints_everything_on_stdout(home: Path) -> None:
    r = netops(home, "show", "fix-calico")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("fix-calico (disruptive): calico-node went silent")
    assert "drain_timeout  duration" in r.stdout  # params, uncut
    from netops.library import find_runbook, packaged_dir

    rb = find_runbook([packaged_dir()], "fix-calico")
    for step in rb.all_steps():  # every `when`, long ones too, uncut
        assert not step.when or step.when in r.stdout
    assert "…" not in r.stdout


def test_a_disruptive_runbook_needs_explicit_targets_and_yes_off_a_terminal(
        home: Path) -> None:
    (home / "bounce.yaml").write_text(DISRUPTIVE)
    r = netops(home, "run", "bounce.yaml")
    assert r.returncode == 2
    assert "'bounce' is disruptive: name its targets with --nodes" in r.stderr
    assert "--nodes all" in r.stderr
    r = netops(home, "run", "bounce.yaml", "--nodes", "all")
    assert r.returncode == 2 and "no terminal to ask" in r.stderr and "--yes" in r.stderr
    # a dry run needs neither (it changes nothing); --yes lets the run go (to a closed port)
    dry = netops(home, "--connect-timeout", "1", "run", "bounce.yaml", "--dry-run")
    assert "disruptive" not in dry.stderr, dry.stderr
    go = netops(home, "--connect-timeout", "1", "--host-keys", "off", "run", "bounce.yaml",
                "--nodes", "all", "--yes")
    assert go.returncode == 1 and "unreachable" in go.stderr


def test_validate_takes_library_names_as_run_finds_them(home: Path) -> None:
    good = netops(home, "validate", "check-ip-forward")
    assert good.returncode == 0 and "1 valid, 0 invalid" in good.stderr, good.stderr
    bad = netops(home, "validate", "check-ip-forward", "no-such-book")
    assert bad.returncode == 2 and "1 valid, 1 invalid" in bad.stderr
    assert "no runbook named 'no-such-book'" in bad.stderr and "netops list" in bad.stderr


def test_a_secret_var_with_a_quote_and_a_newline_stays_out_of_the_journal(home: Path) -> None:
    (home / "sec.yaml").write_text("name: sec\ndescription: d\nparams:\n  pw:\n"
                                   "    type: string\n    secret: true\nsteps:\n"
                                   "  - local: echo \"{{ pw }}\"\n")  # no node needed
    secret = "q'x\"y\nline2-s3kr1t"
    dry = netops(home, "--connect-timeout", "1", "run", "sec.yaml", "--dry-run",
                 "--var", f"pw={secret}", "-e", f"pw={secret}")
    assert dry.returncode == 0, dry.stderr
    history = netops(home, "history", "--json")
    run_id = __import__("json").loads(history.stdout)["runs"][0]["run_id"]
    report = netops(home, "report", run_id, "--json")
    assert '"pw=***"' in report.stdout and '"echo \\"***\\""' in report.stdout
    shown = [history.stdout, report.stdout, netops(home, "report", run_id).stdout,
             dry.stdout, dry.stderr, *(f.read_text(errors="replace")
                                       for f in home.glob("journal.db*"))]
    for part in ("s3kr1t", "q'x", 'x"y'):
        assert not any(part in text for text in shown), part


def test_history_is_complete_off_a_terminal(home: Path) -> None:
    from netops.journal import Journal, RunRecord

    j = Journal(home / "journal.db")
    j.start_run(RunRecord(run_id="abc123", runbook="a-very-long-runbook-name-" + "x" * 60,
                          nodes="workers:!w1,w2", operator="someone-with-a-long-name"))
    r = netops(home, "history")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split() == ["run", "started", "runbook", "nodes", "status", "hosts",
                              "operator"]
    assert "x" * 60 in row and "workers:!w1,w2" in row and row.endswith(
        "someone-with-a-long-name") and "running" in row


def test_every_option_of_every_command_is_documented() -> None:
    """`--help` of each command describes it and every one of its options (issue 15)."""
    import click

    from netops.cli.main import COMMANDS, app

    assert app.list_commands(click.Context(app)) == list(COMMANDS)  # every one is mapped
    missing: list[str] = []

    def walk(cmd: object, path: str) -> None:
        if not getattr(cmd, "help", None) and path != "netops":
            missing.append(f"{path}: no description")
        for p in getattr(cmd, "params", []):
            if type(p).__name__.endswith("Option") and not p.help:
                missing.append(f"{path} {p.opts[0]}")
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(app, "netops")
    assert not missing, missing
    assert {"lab", "run", "exec", "list", "show", "diagnose", "schedule"} <= set(app.commands)
