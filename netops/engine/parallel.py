"""Hosts in parallel, at most `forks` at a time: the one pool idiom every command uses."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from netops.gcpause import resume

T = TypeVar("T")
R = TypeVar("R")


def each(items: Sequence[T], fn: Callable[[T], R], forks: int) -> list[R]:
    """`fn` over `items` on up to `forks` threads; results in the order of `items`. If any call
    raised, the first such error (in the order of `items`) is raised once all have finished.

    The workers are plain daemon threads taking the next item, not a ThreadPoolExecutor: every
    non-daemon thread start walks the lock of every live non-daemon thread (CPython 3.11's
    `threading._maintain_shutdown_locks`), O(N^2) over a 500-host run or a diagnose's ~10 per
    node. A single item runs in the calling thread.
    """
    if not items:
        return []
    resume()  # the CLI's start-up is over once work fans out (netops.gcpause)
    if len(items) == 1 or forks <= 1:
        return [fn(item) for item in items]
    results: list[R | None] = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)
    todo = iter(range(len(items)))
    take = threading.Lock()

    def work() -> None:
        while True:
            with take:
                i = next(todo, None)
            if i is None:
                return
            try:
                results[i] = fn(items[i])
            except BaseException as e:  # re-raised in the caller, in order
                errors[i] = e

    workers = [threading.Thread(target=work, name=f"netops-{n}", daemon=True)
               for n in range(min(forks, len(items)))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results  # type: ignore[return-value]  # every slot was filled: no error
