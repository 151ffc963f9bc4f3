"""What the YAML and INI inventory parsers share with each other and with `load.py`.

The three sections a group has, the error the group graph raises for the parser to place at a
file position, the quoted source line that error messages end with, and values normalised the
way `ansible-inventory --list` prints them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

SECTIONS = ("hosts", "children", "vars")


class GraphError(ValueError):
    """A structural problem found while linking groups; the parser adds the position."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def quote_line(lines: list[str], line: int) -> str:
    """`\\n  NNNN | text` of 1-based `line`, to append to an error message."""
    return f"\n  {line:>4} | {lines[line - 1]}"


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
