"""The CLI's entry point pauses the cyclic GC while modules load and resumes it when work fans
out: a long run or the scheduler must collect as usual."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_the_gc_is_paused_at_start_up_and_back_once_work_fans_out() -> None:
    code = """
import gc, sys
import netops.startup as startup
from netops.engine.parallel import each
seen = []
def cli_main():
    seen.append(gc.isenabled())           # while the CLI loads
    each([1, 2], lambda i: i, 2)           # work fans out to hosts
    seen.append(gc.isenabled())
import netops.cli.main
netops.cli.main.main = cli_main
startup.main()
print(seen, gc.isenabled(), gc.get_freeze_count() > 0)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["[False,", "True]", "True", "True"]


def test_the_gc_comes_back_even_when_the_command_crashes() -> None:
    code = """
import gc
import netops.cli.main, netops.startup as startup
def boom():
    raise RuntimeError("bug")
netops.cli.main.main = boom
try:
    startup.main()
except RuntimeError:
    pass
print(gc.isenabled())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "True"


@pytest.mark.parametrize("code,rc,err", [("3", 3, ""), ("None", 0, ""), ("'bye'", 1, "bye\n")])
def test_exit_now_keeps_the_status_flushes_and_waits_for_workers(code: str, rc: int,
                                                                 err: str) -> None:
    """The quick exit skips the interpreter's teardown, not what `sys.exit` promises."""
    script = f"""
import sys, threading, time
from netops.startup import exit_now
sys.stdout.write("buffered")  # a pipe: this stays in the buffer
worker = threading.Thread(target=lambda: (time.sleep(0.2), sys.stdout.write(", worker")))
worker.start()
exit_now({code})
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (rc, "buffered, worker", err)


def test_paramiko_loads_with_its_own_version_and_leaves_importlib_metadata_alone() -> None:
    """netops lends paramiko a stand-in for importlib.metadata (15 ms of start-up): the client
    banner must still carry paramiko's real version, and the real module must work after."""
    code = """
import sys
import netops.transport._paramiko as p
print(p._lent is not None, "importlib.metadata" in sys.modules, "invoke" in sys.modules)
import importlib.metadata as m
print(p.paramiko.Transport._CLIENT_ID == "paramiko_" + m.version("paramiko"),  # the banner
      hasattr(m, "distribution"))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["True", "False", "False", "True", "True"]


def test_the_stand_in_answers_only_for_paramiko() -> None:
    from netops.transport._paramiko import _dist_version, _metadata_stand_in

    stand_in = _metadata_stand_in("paramiko", "9.9.9")
    assert stand_in.version("paramiko") == "9.9.9"
    with pytest.raises(LookupError, match="knows only paramiko"):
        stand_in.version("cryptography")
    assert _dist_version("no_such_package_here") is None


@pytest.mark.parametrize("shared,closed", [(True, True), (False, False)])
def test_a_shared_journal_is_closed_with_the_command(monkeypatch: pytest.MonkeyPatch,
                                                     shared: bool, closed: bool) -> None:
    """The quick exit skips the interpreter's teardown, so a PostgreSQL journal must be closed
    when the command's context closes (a clean goodbye to the server); a SQLite one keeps its
    committed WAL (closing would checkpoint it: an fsync per run)."""
    import typer

    from netops.cli.app import Settings, app, open_journal
    from netops.journal import Journal

    class Fake:
        def __init__(self) -> None:
            self.shared, self.closed = shared, False

        def close(self) -> None:
            self.closed = True

    fake = Fake()
    monkeypatch.setattr(Journal, "open", classmethod(lambda cls, spec: fake))
    ctx = typer.Context(typer.main.get_command(app), obj=Settings(Path("inv")))
    with ctx:
        assert open_journal(ctx) is fake
        assert not fake.closed
    assert fake.closed is closed
