"""Hosts in parallel, at most `forks` at a time: the one pool idiom every command uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def each(items: Sequence[T], fn: Callable[[T], R], forks: int) -> list[R]:
    """`fn` over `items` on up to `forks` threads; results in the order of `items`."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(items)))) as pool:
        return list(pool.map(fn, items))
