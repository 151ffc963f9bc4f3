"""Hosts in parallel, at most `forks` at a time: the one pool idiom every command uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from netops.startup import resume

T = TypeVar("T")
R = TypeVar("R")


def each(items: Sequence[T], fn: Callable[[T], R], forks: int) -> list[R]:
    """`fn` over `items` on up to `forks` threads; results in the order of `items`."""
    if not items:
        return []
    resume()  # the CLI's start-up is over once work fans out (netops.startup)
    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(items)))) as pool:
        return list(pool.map(fn, items))
