"""`netops run` checks every input before it opens a single connection (exit 2, DESIGN.md), and
only then connects: a listening socket stands in for the node and counts who knocked."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNBOOK = """\
name: probe
description: one read-only check
params:
  level: {type: int, default: 1}
steps:
  - check: "true"
"""


@pytest.fixture
def node() -> Iterator[list[int]]:
    """A TCP listener on 127.0.0.1 that accepts and hangs up; yields [port, accepted]."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen = [listener.getsockname()[1], 0]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            seen[1] += 1
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield seen
    listener.close()


def _write(tmp_path: Path, port: int) -> None:
    """An inventory of one host, n1, at the listener; the probe runbook."""
    (tmp_path / "inventory.yaml").write_text(
        f"all:\n  hosts:\n    n1: {{ansible_host: 127.0.0.1, ansible_port: {port}}}\n")
    (tmp_path / "probe.yaml").write_text(RUNBOOK)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("NETOPS_INVENTORY", None)
    return env


def _cli(tmp_path: Path, *args: str,
         journal: str | None = None) -> subprocess.CompletedProcess[str]:
    """`netops -i inventory.yaml --journal JOURNAL ARGS...` in `tmp_path` (_write first)."""
    return subprocess.run(
        [sys.executable, "-m", "netops", "-i", str(tmp_path / "inventory.yaml"), "--journal",
         journal or str(tmp_path / "journal.db"), *args],
        capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=60)


def _netops(tmp_path: Path, port: int, *args: str,
            first: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    _write(tmp_path, port)
    return _cli(tmp_path, "--connect-timeout", "2", *first, "run",
                str(tmp_path / "probe.yaml"), "--yes", *args)


@pytest.mark.parametrize("args,words", [
    (["--var", "level=high"], "--var level"),
    (["--var", "nosuch=1"], "has no such param"),
    (["--batch-size", "many"], "--batch-size"),
    (["--max-fail", "-1"], "--max-fail"),
    (["--pause", "soon"], "soon"),
    (["--timeout", "0"], "--timeout"),  # not the default timeout, silently
    (["--timeout", "nan"], "not a finite number of seconds"),
])
def test_bad_input_exits_2_before_any_connection(tmp_path: Path, node: list[int],
                                                 args: list[str], words: str) -> None:
    done = _netops(tmp_path, node[0], *args)
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert node[1] == 0


@pytest.mark.parametrize("args", [["--connect-timeout", "-1", "exec", "--", "true"],
                                  ["exec", "--timeout", "inf", "--", "true"]])
def test_exec_checks_its_timeouts_before_any_connection(tmp_path: Path, node: list[int],
                                                        args: list[str]) -> None:
    _write(tmp_path, node[0])
    done = _cli(tmp_path, *args)
    assert done.returncode == 2 and "timeout" in done.stderr, done.stderr
    assert node[1] == 0


@pytest.mark.parametrize("key,words", [
    ("nokey", "nokey does not exist"),
    ("id.pub", "id.pub is not a private key"),  # the usual slip
])
def test_a_bad_key_file_exits_2_before_any_connection(tmp_path: Path, node: list[int],
                                                      key: str, words: str) -> None:
    _write(tmp_path, node[0])
    (tmp_path / "id.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0 me@here\n")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace(
        "ansible_port:", f"ansible_ssh_private_key_file: {tmp_path}/{key}, ansible_port:"))
    done = _cli(tmp_path, "run", str(tmp_path / "probe.yaml"), "--yes")
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert node[1] == 0


def test_a_missing_key_past_the_first_batch_exits_2_before_any_connection(
        tmp_path: Path, node: list[int]) -> None:
    """Only the first --forks hosts are dialled ahead, but every host's key file is checked
    before any of them is."""
    _write(tmp_path, node[0])
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(inventory.read_text() + (
        f"    n2: {{ansible_host: 127.0.0.1, ansible_port: {node[0]}, "
        f"ansible_ssh_private_key_file: {tmp_path}/nokey}}\n"))
    for args in (["run", str(tmp_path / "probe.yaml"), "--yes", "--forks", "1"],
                 ["exec", "--forks", "1", "--", "true"]):
        done = _cli(tmp_path, *args)
        assert done.returncode == 2 and "nokey does not exist" in done.stderr, done.stderr
        assert node[1] == 0


def test_a_journal_that_cannot_open_exits_2_before_any_connection(tmp_path: Path,
                                                                   node: list[int]) -> None:
    _write(tmp_path, node[0])
    for args in (["run", str(tmp_path / "probe.yaml"), "--yes"], ["exec", "--", "true"]):
        done = _cli(tmp_path, *args, journal="/proc/netops-none/journal.db")
        assert done.returncode == 2 and "cannot open the journal" in done.stderr, done.stderr
        assert node[1] == 0


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(),
                    reason="a private read-only tmpfs needs root and unshare")
def test_a_read_only_journal_exits_2_before_any_connection(tmp_path: Path,
                                                           node: list[int]) -> None:
    """The journal opens (it is read), but cannot take a write: run and exec say so before
    they dial or warm a connection."""
    _write(tmp_path, node[0])
    disk = tmp_path / "disk"
    disk.mkdir()
    netops = (f"{sys.executable} -m netops -i {tmp_path}/inventory.yaml "
              f"--journal {disk}/journal.db")
    script = f"""
    mount -t tmpfs -o size=1m tmpfs {disk} || exit 99
    {netops} history >/dev/null && mount -o remount,ro {disk} || exit 99
    {netops} run {tmp_path}/probe.yaml --yes; echo "run=$?"
    {netops} exec -- true; echo "exec=$?"
    """
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                          text=True, env=_env(tmp_path), cwd=tmp_path, timeout=60)
    if done.returncode == 99:
        pytest.skip("cannot mount a tmpfs here")
    assert "run=2" in done.stdout and "exec=2" in done.stdout, done
    assert done.stderr.count("readonly database") == 2, done.stderr
    assert node[1] == 0


@pytest.mark.parametrize("var,words", [
    ("check-conntrack.nosuch=1", "has no such param"),
    ("check-conntrack.sample_interval=soon", "soon"),
    ("nosuch.x=1", "one of the runbooks diagnosed"),
])
def test_diagnose_checks_its_vars_before_any_connection(tmp_path: Path, node: list[int],
                                                        var: str, words: str) -> None:
    _write(tmp_path, node[0])
    done = _cli(tmp_path, "diagnose", "-r", "check-conntrack", "-e", var)
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert node[1] == 0


@pytest.mark.parametrize("option", ["--metrics", "--html"])
def test_diagnose_checks_its_output_files_before_any_connection(tmp_path: Path,
                                                                node: list[int],
                                                                option: str) -> None:
    _write(tmp_path, node[0])
    done = _cli(tmp_path, "diagnose", "-r", "check-conntrack", option,
                str(tmp_path / "nodir" / "out"))
    assert done.returncode == 2 and f"no directory {tmp_path}/nodir" in done.stderr, done.stderr
    assert node[1] == 0


def test_good_input_does_connect(tmp_path: Path, node: list[int]) -> None:
    """The control: the same run with valid input knocks, finds no SSH server there, and says
    so in one line per host, without paramiko's traceback from its transport thread."""
    done = _netops(tmp_path, node[0])
    assert done.returncode == 1 and node[1] >= 1
    assert "n1: unreachable" in done.stderr and "Error reading SSH protocol banner" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    # the quick exit (no interpreter teardown) left a complete journal behind
    db = sqlite3.connect(tmp_path / "journal.db")
    assert db.execute("SELECT status, finished IS NOT NULL FROM runs").fetchall() == [
        ("failed", 1)]
    assert db.execute("SELECT host, status FROM hosts").fetchall() == [("n1", "unreachable")]


def test_debug_shows_paramikos_log(tmp_path: Path, node: list[int]) -> None:
    done = _netops(tmp_path, node[0], first=("--debug",))
    assert "paramiko.transport: " in done.stderr, done.stderr


def test_a_run_off_a_terminal_never_loads_rich(tmp_path: Path, node: list[int]) -> None:
    """Its output is plain text (no tag, no wrapping), so Rich's ~15 ms of imports are
    saved; the same run shows on a terminal through Rich."""
    _write(tmp_path, node[0])
    code = """
import sys
from netops.cli.main import main
try:
    main(["-i", "inventory.yaml", "--journal", "journal.db", "run", "probe.yaml", "--yes"])
except SystemExit as e:
    print(e.code, "rich" in sys.modules, file=sys.__stdout__)
"""
    env = {**os.environ, "HOME": str(tmp_path)}
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR", "NETOPS_INVENTORY"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert done.stdout.split() == ["1", "False"], done.stderr
    assert "[/]" not in done.stderr and "[bold" not in done.stderr
    assert any(len(line) > 80 for line in done.stderr.splitlines())  # one line per event
    forced = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**env, "TTY_COMPATIBLE": "1"}, cwd=tmp_path, timeout=60)
    assert forced.stdout.split() == ["1", "True"], forced.stderr
