"""`--nodes` selection (Ansible `--limit` syntax) and inventory host ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from netops.errors import UnknownTarget, UserError
from netops.inventory import Inventory, load_inventory
from netops.inventory.patterns import RangeError, expand_hosts, expand_range, split_pattern

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chicks() -> Inventory:
    return load_inventory(ROOT / "inventory.yaml")


def names(inv: Inventory, pattern: str | None) -> list[str]:
    return [h.name for h in inv.select(pattern)]


@pytest.mark.parametrize("pattern", [None, "", "all", "*"])
def test_everything(chicks: Inventory, pattern: str | None) -> None:
    assert names(chicks, pattern) == [f"chick{i}" for i in range(1, 19)]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("chick4", ["chick4"]),
    ("etcd", ["chick1", "chick2", "chick3"]),
    ("chick1*", ["chick1", *(f"chick{i}" for i in range(10, 19))]),
    ("chick?", [f"chick{i}" for i in range(1, 10)]),
    ("~chick1[78]$", ["chick17", "chick18"]),
    ("workers:!chick1?", [f"chick{i}" for i in range(4, 10)]),
    ("workers,!chick1?", [f"chick{i}" for i in range(4, 10)]),
    ("all:&etcd", ["chick1", "chick2", "chick3"]),
    ("&etcd", ["chick1", "chick2", "chick3"]),
    ("!workers", ["chick1", "chick2", "chick3"]),
    ("chick2,control_plane,!chick1", ["chick2", "chick3"]),
    ("chick9, chick3 ,chick9", ["chick3", "chick9"]),  # inventory order, no duplicates
    ("!chick1,workers,&chick1*", [f"chick{i}" for i in range(10, 19)]),  # & and ! apply last
    ("workers[0]", ["chick4"]),
    ("workers[-1]", ["chick18"]),
    ("workers[1:2]", ["chick5", "chick6"]),
    ("workers[13:]", ["chick17", "chick18"]),
    ("control_plane:workers", names_all := [f"chick{i}" for i in range(1, 19)]),
    ("etcd:workers:!etcd", names_all[3:]),
])
def test_selection(chicks: Inventory, pattern: str, expected: list[str]) -> None:
    assert names(chicks, pattern) == expected


def test_a_group_with_no_hosts_selects_nothing(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts: {a: }\n  children:\n    empty:\n")
    assert load_inventory(inv).select("empty") == ()


def test_unknown_name_raises_with_close_matches(chicks: Inventory) -> None:
    with pytest.raises(UnknownTarget) as e:
        chicks.select("workers,chick19")
    assert e.value.name == "chick19"
    assert "chick1" in e.value.close_matches and "chick18" in e.value.close_matches
    with pytest.raises(UnknownTarget) as e:
        chicks.select("all:!etc")
    assert e.value.close_matches[0] == "etcd"
    with pytest.raises(UnknownTarget):
        chicks.select("node*")
    with pytest.raises(UnknownTarget) as e:  # with a comma, ':' is part of the name (Ansible)
        chicks.select("chick2,control_plane:!chick1")
    assert "does not separate" in e.value.hint
    with pytest.raises(UnknownTarget):
        chicks.host("chick0")


def test_a_subscript_of_no_group_is_explained_not_blamed_on_commas(chicks: Inventory) -> None:
    with pytest.raises(UnknownTarget) as e:  # issue 15: the hint spoke of commas
        chicks.select("chick[1:2]")
    assert "," not in e.value.name and "does not separate" not in e.value.hint
    assert "subscript" in e.value.hint and "of the group 'chick'" in e.value.hint
    assert "'~chick[12]$'" in e.value.hint
    assert names(chicks, "~chick[12]$") == ["chick1", "chick2"]  # what it suggests works
    with pytest.raises(UnknownTarget) as e:  # a host:port address is not a comma mistake
        chicks.select("chick99:22")
    assert "does not separate" not in (e.value.hint or "")


def test_bad_patterns_are_user_errors(chicks: Inventory) -> None:
    with pytest.raises(UserError, match="out of range"):
        chicks.select("etcd[5]")
    with pytest.raises(UserError, match="invalid --nodes pattern"):
        chicks.select("~chick(")


@pytest.mark.parametrize(("pattern", "items"), [
    ("a,b:c", ["a", "b:c"]),
    ("a:b:!c", ["a", "b", "!c"]),
    ("web:2222", ["web:2222"]),  # host:port, like Ansible
    ("fe80::1", ["fe80::1"]),
    ("web[1:3]", ["web[1:3]"]),
    ("web[1:3]:db", ["web[1:3]", "db"]),
    (" a , ,b ", ["a", "b"]),
])
def test_split_pattern(pattern: str, items: list[str]) -> None:
    assert split_pattern(pattern) == items


@pytest.mark.parametrize(("name", "hosts"), [
    ("chick[1:3]", ["chick1", "chick2", "chick3"]),
    ("chick[08:10]", ["chick08", "chick09", "chick10"]),
    ("n[0:10:5]", ["n0", "n5", "n10"]),
    ("n[a:c]", ["na", "nb", "nc"]),
    ("r[1:2]-n[a:b]", ["r1-na", "r1-nb", "r2-na", "r2-nb"]),
    ("10.0.[0:1].1", ["10.0.0.1", "10.0.1.1"]),
    ("n[:1]", ["n0", "n1"]),
    ("plain", ["plain"]),
])
def test_expand_range(name: str, hosts: list[str]) -> None:
    assert expand_range(name) == hosts


@pytest.mark.parametrize("name", ["n[1:]", "n[1]", "n[01:100]", "n[3:1]", "n[1:3:0]",
                                  "n[1:c]", "n[1:3"])
def test_bad_ranges(name: str) -> None:
    with pytest.raises(RangeError):
        expand_range(name)


def test_expand_hosts_splits_the_port() -> None:
    assert expand_hosts("web[1:2].lan:2222") == (["web1.lan", "web2.lan"], 2222)
    assert expand_hosts("[2001:db8::1]:22") == (["2001:db8::1"], 22)
    assert expand_hosts("fe80::1") == (["fe80::1"], None)
    assert expand_hosts("odd name!:22") == (["odd name!:22"], None)  # Ansible keeps it whole
