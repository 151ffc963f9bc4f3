import pytest

from netops.engine.plan import batches, parse_sizes, parse_tolerance, resolve_size, tolerance
from netops.errors import UserError

HOSTS = [f"h{i}" for i in range(1, 9)]


def test_canary_sizes_last_repeats() -> None:
    assert [len(b) for b in batches(HOSTS, (1, "25%", "100%"))] == [1, 2, 5]
    assert [len(b) for b in batches(HOSTS, (3,))] == [3, 3, 2]
    assert [len(b) for b in batches(HOSTS, (1, 2))] == [1, 2, 2, 2, 1]
    assert batches(HOSTS, ())[0] == tuple(HOSTS)


def test_percent_rounds_down_but_never_zero() -> None:
    assert resolve_size("10%", 8) == 1
    assert resolve_size("50%", 5) == 2


def test_batches_keep_order_and_cover_everything() -> None:
    out = batches(HOSTS, ("30%",))
    assert [h for b in out for h in b] == HOSTS


@pytest.mark.parametrize("text", ["0", "abc", "0%", "150%", "-1"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(UserError):
        parse_sizes(text)


def test_tolerance_is_run_wide_and_rounds_down() -> None:
    assert tolerance(0, 10) == 0
    assert tolerance("10%", 10) == 1
    assert tolerance("10%", 9) == 0
    assert tolerance(2, 3) == 2
    assert parse_tolerance("25%") == "25%"
    assert parse_tolerance("3") == 3
    with pytest.raises(UserError):
        parse_tolerance("x")
