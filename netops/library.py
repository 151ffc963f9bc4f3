"""The runbook library: where runbooks are looked for, and finding one by name or file.

Search order (an earlier directory wins for a name found in several): each `--runbooks DIR`,
`./runbooks`, the user's own library (`$XDG_CONFIG_HOME/netops/runbooks`, by default
`~/.config/netops/runbooks`), then the runbooks shipped inside the package (read through
importlib.resources, so an installed wheel finds them from any directory).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from netops.errors import UserError

if TYPE_CHECKING:
    from netops.runbook.model import Runbook


@dataclass(frozen=True, slots=True)
class Source:
    """A directory of the search path and what it is to the operator."""

    path: Path
    kind: str
    """`--runbooks`, `./runbooks`, `user` or `packaged`."""


def user_dir() -> Path:
    """The operator's own runbooks: `$XDG_CONFIG_HOME/netops/runbooks`."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "netops" / "runbooks"


def packaged_dir() -> Path:
    """The library shipped inside the package (a directory on disk: netops is never
    imported from a zip; if it were, the files are extracted for the life of the process).
    Looked for beside this module first: importlib.resources costs ~4 ms to load."""
    beside = Path(__file__).parent / "runbooks"
    if beside.is_dir():
        return beside
    from importlib.resources import as_file, files

    shipped = files("netops").joinpath("runbooks")
    if isinstance(shipped, Path):
        return shipped
    import atexit
    import contextlib

    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    return stack.enter_context(as_file(shipped))


def runbook_sources(given: Sequence[Path]) -> list[Source]:
    """The search path, existing directories only, each once (its first place wins)."""
    candidates = [*(Source(d, "--runbooks") for d in given), Source(Path("runbooks"), "./runbooks"),
                  Source(user_dir(), "user"), Source(packaged_dir(), "packaged")]
    out: list[Source] = []
    seen: set[Path] = set()
    for c in candidates:
        if not c.path.is_dir():
            if c.kind == "--runbooks":
                raise UserError(f"--runbooks {str(c.path)!r}: no such directory")
            continue
        real = c.path.resolve()
        if real not in seen:
            seen.add(real)
            out.append(c)
    return out


def runbook_dirs(given: Sequence[Path]) -> list[Path]:
    """The directories of `runbook_sources`, in search order."""
    return [s.path for s in runbook_sources(given)]


def source_of(sources: Sequence[Source], file: Path) -> str:
    """Where `file` was found, as `netops list` shows it: the kind, and the directory unless
    it is the packaged library."""
    for s in sources:
        if file.parent.resolve() == s.path.resolve():
            return "packaged" if s.kind == "packaged" else f"{s.kind} ({s.path})"
    return str(file.parent)


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
