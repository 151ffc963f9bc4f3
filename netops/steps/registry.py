"""The step kinds: name -> module, each imported when first asked for.

A kind is one module under `netops/steps/` exposing what `Kind` lists (see `steps.base`; a
constant or `problem` equal to `Kind`'s default may be left out): a
run loads only the kinds its runbook uses (the file, sysctl and systemd kinds cost a few ms of
start-up each), and `netops --help` none. To add a kind, write its module and name it here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netops.steps.base import Outcome, StepContext
    from netops.transport.base import Command

MODULES: dict[str, str] = {name: f"netops.steps.{name}" for name in (
    "check", "shell", "kubectl", "local", "wait", "sysctl", "file", "systemd", "reboot")}
NAMES: tuple[str, ...] = tuple(MODULES)
"""Every kind, in the order the schema and the help list them."""


def _no_problem(args: Any) -> tuple[str, str] | None:
    return None


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind's module as the format and the engine use it. A module declares the first six;
    it leaves out any of the last five that is the default given here."""

    Args: type[Any]
    """Frozen dataclass of its arguments; `arg(...)` metadata gives the runbook format."""
    HELP: str
    MAIN: str | None
    """The argument a plain scalar fills (`check: CMD`), if any."""
    converges: Callable[[Any], bool]
    """Running it again converges instead of repeating its change (a resume re-checks); no
    default: a kind must say whether a resume may run it again."""
    reads: Callable[[Any, StepContext], list[Command]]
    """The read-only commands it sends first, in order (pure)."""
    run: Callable[[Any, StepContext], Outcome]
    """Read, decide, and (unless a dry run) apply."""
    MUTATES: bool = True
    MUTATES_OVERRIDABLE: bool = False
    """A step may say `mutates: false` (a read-only command)."""
    ON: str = "node"
    """Where it runs by default: node or controller."""
    ENDS_READ_AHEAD: bool = False
    """The node's state is expected to move: no read after it is predicted."""
    problem: Callable[[Any], tuple[str, str] | None] = _no_problem
    """(field at fault or "", why) when valid fields do not work together."""


_loaded: dict[str, Kind] = {}


def kind(name: str) -> Kind:
    """Kind `name`, its module imported on first use (a KeyError for a name not in `NAMES`)."""
    found = _loaded.get(name)
    if found is None:
        module = importlib.import_module(MODULES[name])
        found = _loaded[name] = Kind(**{f.name: getattr(module, f.name) for f in fields(Kind)
                                        if hasattr(module, f.name)})
    return found
