"""The step kinds: name -> module, each imported when first asked for.

A kind is one module under `netops/steps/` exposing what `Kind` lists (see `steps.base`): a
run loads only the kinds its runbook uses (the file, sysctl and systemd kinds cost a few ms of
start-up each), and `netops --help` none. To add a kind, write its module and name it here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from netops.steps.base import Outcome, StepContext
    from netops.transport.base import Command

MODULES: dict[str, str] = {name: f"netops.steps.{name}" for name in (
    "check", "shell", "kubectl", "local", "wait", "sysctl", "file", "systemd", "reboot")}
NAMES: tuple[str, ...] = tuple(MODULES)
"""Every kind, in the order the schema and the help list them."""


class Kind(Protocol):
    """What a kind's module holds."""

    Args: type[Any]
    """Frozen dataclass of its arguments; `arg(...)` metadata gives the runbook format."""
    HELP: str
    MAIN: str | None
    """The argument a plain scalar fills (`check: CMD`), if any."""
    MUTATES: bool
    MUTATES_OVERRIDABLE: bool
    """A step may say `mutates: false` (a read-only command)."""
    ON: str
    """Where it runs by default: node or controller."""
    ENDS_READ_AHEAD: bool
    """The node's state is expected to move: no read after it is predicted."""

    def problem(self, args: Any) -> tuple[str, str] | None:
        """(field at fault or "", why) when valid fields do not work together."""

    def converges(self, args: Any) -> bool:
        """Running it again converges instead of repeating its change (a resume re-checks)."""

    def reads(self, args: Any, ctx: StepContext) -> list[Command]:
        """The read-only commands it sends first, in order (pure)."""

    def run(self, args: Any, ctx: StepContext) -> Outcome:
        """Read, decide, and (unless a dry run) apply."""


_loaded: dict[str, Kind] = {}


def kind(name: str) -> Kind:
    """The module of kind `name` (a KeyError for a name not in `NAMES`)."""
    found = _loaded.get(name)
    if found is None:
        found = _loaded[name] = cast(Kind, importlib.import_module(MODULES[name]))
    return found
