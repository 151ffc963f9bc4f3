"""The runbook library: where runbooks are looked for, and finding one by name or file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netops.errors import UserError

if TYPE_CHECKING:
    from netops.runbook.model import Runbook


def runbook_dirs(given: Sequence[Path]) -> list[Path]:
    """--runbooks dirs, then ./runbooks, then the library shipped beside the package."""
    shipped = Path(__file__).resolve().parent.parent / "runbooks"
    dirs = [*given, Path("runbooks"), shipped]
    return [d for i, d in enumerate(dirs) if d.is_dir() and d.resolve() not in
            {x.resolve() for x in dirs[:i]}]


def find_runbook(dirs: Sequence[Path], name: str) -> Runbook:
    """The runbook `name` (a library name, or a .yaml file), loaded and checked."""
    from netops.runbook.load import find_runbooks, load_runbook

    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return load_runbook(path)
    found = find_runbooks(dirs)
    if name not in found:
        import difflib

        close = difflib.get_close_matches(name, list(found), n=3)
        raise UserError(f"no runbook named {name!r}",
                        hint=f"did you mean: {', '.join(close)}?" if close
                        else "`netops list` shows the library")
    return load_runbook(found[name])
