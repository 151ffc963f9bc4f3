"""What the YAML and INI inventory parsers share with each other and with `load.py`.

The three sections a group has, the error the group graph raises for the parser to place at a
file position, the quoted source line that error messages end with, and values normalised the
way `ansible-inventory --list` prints them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from netops.inventory import patterns
from netops.inventory.patterns import RangeError
from netops.yamlfile import quote

SECTIONS = ("hosts", "children", "vars")
MAX_HOSTS = 100_000  # the most hosts one host key (`node[1:100000]`) may stand for
_BRACKETS = re.compile(r"\[([^\]]*)\]")


class GraphError(ValueError):
    """A structural problem found while linking groups; the parser adds the position."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def quote_line(lines: list[str], line: int) -> str:
    """`\\n  NNNN | text` of 1-based `line` (clipped when long), to append to an error message."""
    return quote(lines, line)


def expand_hosts(pattern: str) -> tuple[list[str], int | None]:
    """`patterns.expand_hosts`, refusing (RangeError) a key that stands for more than
    MAX_HOSTS names before building them, and any other ValueError as a RangeError."""
    total = 1
    for inner in _BRACKETS.findall(pattern):
        parts = inner.split(":")
        if len(parts) in (2, 3) and parts[1] and all(p.isascii() and p.isdigit()
                                                     for p in parts if p):
            try:
                begin, end = int(parts[0] or 0), int(parts[1])
                step = int(parts[2]) if len(parts) == 3 and parts[2] else 1
            except ValueError:  # thousands of digits
                raise RangeError(f"range [{inner[:40]}]: the numbers are too large") from None
            total *= max(1, (end - begin) // max(step, 1) + 1)
            if total > MAX_HOSTS:
                raise RangeError(f"it stands for more than {MAX_HOSTS} hosts")
    try:
        return patterns.expand_hosts(pattern)
    except ValueError as e:
        raise e if isinstance(e, RangeError) else RangeError(str(e)) from None


def plain_value(value: Any) -> Any:
    """Values as ansible-inventory prints them: JSON keys, dates as ISO strings."""
    if isinstance(value, dict):
        return {json_key(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain_value(v) for v in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def json_key(key: Any) -> Any:
    """A mapping key as JSON has it: strings stay, true/null/numbers become their JSON text."""
    if isinstance(key, str):
        return key
    return json.dumps(key) if isinstance(key, bool | None | int | float) else str(key)
