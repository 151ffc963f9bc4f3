"""The CLI's entry point pauses the cyclic GC while modules load and resumes it when work fans
out: a long run or the scheduler must collect as usual."""

from __future__ import annotations

import re
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


def test_nothing_patches_the_import_system_or_a_library() -> None:
    """Issue 16: start-up stays fast through lazy imports only; no module of netops rewrites
    `sys.modules`, assigns into another package's module, or reaches a library's private
    attribute (`super()._x` included)."""
    import ast

    root = Path(__file__).resolve().parents[2] / "netops"
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        modules = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                   for a in n.names if not a.name.startswith("netops")}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                    and t.value.id in modules for t in node.targets):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "setattr" \
                    and isinstance(node.args[0], ast.Name) and node.args[0].id in modules:
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
            text = ast.unparse(node) if isinstance(node, ast.Assign | ast.Attribute) else ""
            if isinstance(node, ast.Assign) and any("sys.modules" in ast.unparse(t)
                                                    for t in node.targets):
                found.append(f"{path.name}:{node.lineno}: {text}")
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__") \
                    and re.match(r"(super\(\)|paramiko|click|rich)\b", text):
                found.append(f"{path.name}:{node.lineno}: {text}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("shared,closed", [(True, True), (False, False)])
def test_a_shared_journal_is_closed_with_the_command(monkeypatch: pytest.MonkeyPatch,
                                                     shared: bool, closed: bool) -> None:
    """The quick exit skips the interpreter's teardown, so a PostgreSQL journal must be closed
    when the command's context closes (a clean goodbye to the server); a SQLite one keeps its
    committed WAL (closing would checkpoint it: an fsync per run)."""
    import click

    from netops.cli.app import Settings, app, open_journal
    from netops.journal import Journal

    class Fake:
        def __init__(self) -> None:
            self.shared, self.closed = shared, False

        def close(self) -> None:
            self.closed = True

    fake = Fake()
    monkeypatch.setattr(Journal, "open", classmethod(lambda cls, spec: fake))
    ctx = click.Context(app, obj=Settings(Path("inv")))
    with ctx:
        assert open_journal(ctx) is fake
        assert not fake.closed
    assert fake.closed is closed
