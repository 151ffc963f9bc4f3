"""The cyclic GC, paused while the CLI loads and resumed once work fans out (see
`netops.startup`). Its own module, with no imports of netops, so that the engine can resume it
without depending on the entry point."""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Turn the collector off for the start-up, if it is on."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Turn the collector back on if `pause` turned it off (idempotent, cheap), freezing what
    was loaded so that later passes skip it."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
