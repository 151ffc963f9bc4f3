"""The `netops` command's entry point: the cyclic GC is paused while the CLI's modules load.

Loading them allocates a few hundred thousand objects, none of them garbage, and the collector
walks them again and again (~15 ms of a ~0.4 s 10-host run). `main` pauses it; `resume`, called
where work first fans out to hosts (and at exit), freezes what was loaded so that later passes
skip it, and turns the collector back on: long runs and the scheduler collect as usual.
"""

from __future__ import annotations

import gc

_paused = False


def main() -> None:
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True
    try:
        from netops.cli import main as cli_main

        cli_main()
    finally:
        resume()


def resume() -> None:
    """Turn the collector back on if `main` paused it (idempotent, cheap)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
