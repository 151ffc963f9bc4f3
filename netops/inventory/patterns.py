"""Host patterns, as Ansible reads them: `web[01:18]` ranges in inventories, `--limit` selections.

Ports of `ansible.parsing.utils.addresses.parse_address`,
`ansible.plugins.inventory.expand_hostname_range` and `ansible.inventory.manager`
(`split_host_pattern`, `order_patterns`, `_enumerate_matches`), so a `--nodes` pattern selects
what `ansible --limit` would. One deliberate difference: an item that matches nothing is an
error (Ansible only warns), because a typo must not shrink a maintenance run silently.
"""

from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import re
import string
from typing import TYPE_CHECKING

from netops.errors import UnknownTarget, UserError

if TYPE_CHECKING:
    from netops.inventory.model import Host, Inventory

_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_LABEL = rf"(?:[\w]|{_RANGE})(?:[\w_-]|{_RANGE})*(?<![_-])"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I)
_V4_PART = r"(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|\[[0-9]+:[0-9]+(?::[0-9]+)?\])"
_IPV4 = re.compile(rf"^(?:{_V4_PART}\.){{3}}{_V4_PART}$")
_BRACKETED_HOSTPORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_HOSTPORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_COLON_SEPARATED = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")


class RangeError(ValueError):
    """A `[begin:end:step]` host range that cannot be expanded."""


def parse_address(text: str) -> tuple[str, int | None]:
    """Split `host:port` / `[v6]:port`; raises ValueError unless the host part is a valid
    hostname, IPv4 or IPv6 address (any of them possibly with ranges)."""
    address, port = text, None
    for pattern in (_BRACKETED_HOSTPORT, _HOSTPORT):
        m = pattern.match(address)
        if m:
            address, port = m.group(1), int(m.group(2))
    if _IPV4.match(address) or _HOSTNAME.match(address) or _is_ipv6(address):
        return address, port
    raise ValueError(f"not a valid host name: {address}")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def expand_hosts(pattern: str) -> tuple[list[str], int | None]:
    """The host names (and port) a host key like `node[01:03].lan:2222` stands for."""
    try:
        pattern, port = parse_address(pattern)
    except ValueError:  # Ansible takes unparseable names literally, without a port
        port = None
    return expand_range(pattern), port


def expand_range(name: str) -> list[str]:
    """Expand `[begin:end(:step)]` ranges: `n[01:03]` keeps the width, `n[a:c]` is letters."""
    if "[" not in name:
        return [name]
    head, sep, rest = name.partition("[")
    inner, sep, tail = rest.partition("]")
    if not sep:
        raise RangeError(f"unclosed '[' in {name!r}")
    bounds = inner.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError(f"range [{inner}] must be [begin:end] or [begin:end:step]")
    begin, end = bounds[0] or "0", bounds[1]
    step = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise RangeError(f"range [{inner}] has no end")
    if not step.isdigit() or int(step) < 1:
        raise RangeError(f"range [{inner}]: the step must be a positive number")
    width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
    if width and len(end) != width:
        raise RangeError(f"range [{inner}]: zero-padded begin and end must have the same width")
    letters = string.ascii_letters
    if begin in letters and end in letters:
        i, j = letters.index(begin), letters.index(end)
        if i > j:
            raise RangeError(f"range [{inner}]: begin must not be after end")
        items = list(letters[i:j + 1:int(step)])
    elif begin.isdigit() and end.isdigit():
        items = [str(n).zfill(width) for n in range(int(begin), int(end) + 1, int(step))]
    else:
        raise RangeError(f"range [{inner}]: use numbers ([1:9], [01:09]) or letters ([a:f])")
    if not items:
        raise RangeError(f"range [{inner}] is empty (begin is after end)")
    return [expanded for item in items for expanded in expand_range(f"{head}{item}{tail}")]


def split_pattern(pattern: str) -> list[str]:
    """Items of a `--limit` pattern: split on commas, else on `:` unless the whole pattern is
    one address (`host:port`, IPv6, `web[1:3]`)."""
    if "," in pattern:
        items = pattern.split(",")
    else:
        try:
            parse_address(pattern)
            items = [pattern]
        except ValueError:
            items = _COLON_SEPARATED.findall(pattern)
    return [item.strip() for item in items if item.strip()]


def select(inventory: Inventory, pattern: str | None) -> tuple[Host, ...]:
    """The hosts an Ansible `--limit` pattern selects, in inventory order.

    Unions first, then `&` intersections, then `!` exclusions, whatever order they were
    written in (as Ansible does); only `!`/`&` items mean "start from all".
    """
    items = split_pattern(pattern or "")
    commas = "," in (pattern or "")
    regular = [i for i in items if i[0] not in "!&"] or ["all"]
    chosen: set[str] = set()
    for item in regular:
        chosen |= {item} if item in inventory.hosts else _matches(inventory, item, commas)
    for item in (i for i in items if i[0] == "&"):
        chosen &= _matches(inventory, item[1:], commas)
    for item in (i for i in items if i[0] == "!"):
        chosen -= _matches(inventory, item[1:], commas)
    return tuple(h for h in inventory.hosts.values() if h.name in chosen)


def _unknown_hint(item: str, expr: str, subscript: tuple[int, int | None] | None,
                  commas: bool) -> str | None:
    """What to say of an item that matched nothing, when its form explains why."""
    if subscript is not None:
        start, end = subscript
        which = (f"host {start}" if end is None else
                 f"hosts {start} to {'the last' if end == -1 else end}")
        return (f"{item!r} is a subscript, as in Ansible: {which} (counted from 0) of the "
                f"group {expr!r}; to name hosts list them ('{expr}1,{expr}2') or use a "
                f"regular expression ('~{expr}[12]$')")
    if commas and ":" in item:
        return ("in a pattern with ',' a ':' does not separate items (as in Ansible): "
                "write 'a,b,!c' or 'a:b:!c'")
    return None


def _matches(inventory: Inventory, item: str, commas: bool = False) -> set[str]:
    if not item:
        raise UserError("empty item after '!' or '&' in --nodes")
    expr, subscript = _split_subscript(item)
    regex = _compile(expr)
    hosts: list[str] = []
    groups = [g for g in inventory.groups if regex.match(g)]
    for group in groups:
        hosts += [h.name for h in inventory.group_hosts(group) if h.name not in hosts]
    if not groups or expr[0] == "~" or any(c in expr for c in ".?*["):
        hosts += [h for h in inventory.hosts if regex.match(h) and h not in hosts]
    if not hosts and not groups:
        error = UnknownTarget(item, close_matches(inventory, expr.lstrip("~")))
        hint = _unknown_hint(item, expr, subscript, commas)
        if hint is not None:
            error.hint = hint
        raise error
    return set(_apply_subscript(item, hosts, subscript))


def _compile(expr: str) -> re.Pattern[str]:
    try:
        return re.compile(expr[1:] if expr[0] == "~" else fnmatch.translate(expr))
    except re.error as e:
        raise UserError(f"invalid --nodes pattern {expr!r}: {e}") from None


def _split_subscript(item: str) -> tuple[str, tuple[int, int | None] | None]:
    """`workers[0]`, `workers[1:3]` (inclusive), `workers[2:]`: Ansible's subscripts."""
    m = None if item[0] == "~" else _SUBSCRIPT.match(item)
    if not m:
        return item, None
    expr, index, start, _sep, end = m.groups()
    if index:
        return expr, (int(index), None)
    return expr, (int(start), int(end) if end else -1)


def _apply_subscript(item: str, hosts: list[str], subscript: tuple[int, int | None] | None,
                     ) -> list[str]:
    if not hosts or subscript is None:
        return hosts
    start, end = subscript
    if end is not None:
        return hosts[start:(len(hosts) if end == -1 else end + 1)]
    if not -len(hosts) <= start < len(hosts):
        raise UserError(f"--nodes {item!r}: index {start} is out of range, "
                        f"the pattern matches {len(hosts)} host(s)")
    return [hosts[start]]


def close_matches(inventory: Inventory, name: str) -> tuple[str, ...]:
    """Host and group names that look like `name` (for "did you mean" hints)."""
    known = [*inventory.hosts, *(g for g in inventory.groups if g != "ungrouped")]
    return tuple(difflib.get_close_matches(name, known, n=4))
