"""`each`: the pool every command uses (order, errors, threads)."""

from __future__ import annotations

import threading
import time

import pytest

from netops.engine.parallel import each


def test_results_keep_the_order_of_the_items_and_run_side_by_side() -> None:
    seen: set[str] = set()

    def slow(i: int) -> int:
        seen.add(threading.current_thread().name)
        time.sleep(0.05 * (5 - i))  # the first items finish last
        return i * i

    started = time.monotonic()
    assert each(list(range(5)), slow, forks=5) == [0, 1, 4, 9, 16]
    assert time.monotonic() - started < 0.5  # not 0.75 s one after the other
    assert len(seen) == 5 and threading.current_thread().name not in seen


def test_the_first_error_in_item_order_is_raised_after_every_item_ran() -> None:
    done: list[int] = []

    def work(i: int) -> int:
        time.sleep(0.01 * (4 - i))
        done.append(i)
        if i in (1, 3):
            raise ValueError(f"item {i}")
        return i

    with pytest.raises(ValueError, match="item 1"):
        each([0, 1, 2, 3], work, forks=2)
    assert sorted(done) == [0, 1, 2, 3]


def test_one_item_runs_in_the_calling_thread_and_no_thread_is_left() -> None:
    before = threading.active_count()
    assert each(["x"], lambda _: threading.current_thread(), forks=8) == [
        threading.current_thread()]
    each(list(range(20)), lambda i: i, forks=8)
    assert threading.active_count() == before
