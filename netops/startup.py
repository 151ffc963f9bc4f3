"""The `netops` command's entry point: fast in, fast out.

In: the cyclic GC is paused while the CLI's modules load. Loading them allocates a few hundred
thousand objects, none of them garbage, and the collector walks them again and again (~15 ms of
a ~0.4 s 10-host run). `main` pauses it; `gcpause.resume`, called where work first fans out to hosts
(and at exit), freezes what was loaded so that later passes skip it, and turns the collector
back on: long runs and the scheduler collect as usual.

Out: once the command has exited (`netops.cli.main` has closed its journals by then), the
process ends with `os._exit` after flushing its output, instead of tearing the interpreter down
object by object (~10 ms at the end of every run). Threads that are not daemons are waited
for first, as the interpreter would; a crash still ends the ordinary way, with its traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import NoReturn

from netops import gcpause


def main() -> None:
    gcpause.pause()
    try:
        from netops.cli.main import main as cli_main

        cli_main()
    except SystemExit as e:
        exit_now(e.code)
    finally:
        gcpause.resume()


def exit_now(code: object) -> NoReturn:
    """End the process as `sys.exit(code)` would, minus the interpreter's teardown."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    if code is None or isinstance(code, int):
        status = code or 0
    else:  # sys.exit("message"): the message goes to stderr, the status is 1
        sys.stderr.write(f"{code}\n")
        status = 1
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`netops ... | head`)
            stream.flush()
    os._exit(status)
