"""The CLI's entry point pauses the cyclic GC while modules load and resumes it when work fans
out: a long run or the scheduler must collect as usual."""

from __future__ import annotations

import subprocess
import sys


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
import netops.cli
netops.cli.main = cli_main
startup.main()
print(seen, gc.isenabled(), gc.get_freeze_count() > 0)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["[False,", "True]", "True", "True"]


def test_the_gc_comes_back_even_when_the_command_fails() -> None:
    code = """
import gc
import netops.cli, netops.startup as startup
def boom():
    raise SystemExit(2)
netops.cli.main = boom
try:
    startup.main()
except SystemExit:
    pass
print(gc.isenabled())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "True"
