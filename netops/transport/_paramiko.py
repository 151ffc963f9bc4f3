"""paramiko, imported without Invoke and without `importlib.metadata`.

Two of paramiko's imports cost netops' start-up more than they give it:

- `paramiko.config` imports Invoke at load time (about 35 ms) only to run `Match exec` lines of
  ssh_config. netops reads ssh_config itself (`sshconfig`), so Invoke is hidden during that
  import and never needed.
- `paramiko/__init__` asks `importlib.metadata.version("paramiko")` for its `__version__` (the
  client's SSH banner); importing that module and scanning every installed distribution takes
  about 15 ms. netops reads the version off the name of paramiko's own `.dist-info` directory
  instead, and lends paramiko a stand-in module with just that answer for the length of the
  import. When the directory is not found (paramiko installed some other way), or anything else
  has already imported `importlib.metadata`, paramiko imports it as usual.
"""

from __future__ import annotations

import logging
import sys
import types
from importlib.util import find_spec
from pathlib import Path

_METADATA = "importlib.metadata"


def _dist_version(name: str) -> str | None:
    """The version in the name of `name`'s `.dist-info` directory beside the package, if
    there is exactly one."""
    spec = find_spec(name)
    if spec is None or spec.origin is None:
        return None
    found = list(Path(spec.origin).parent.parent.glob(f"{name}-*.dist-info"))
    if len(found) != 1:
        return None
    return found[0].name[len(name) + 1:-len(".dist-info")]


def _metadata_stand_in(name: str, version: str) -> types.ModuleType:
    module = types.ModuleType(_METADATA)

    def version_of(asked: str) -> str:
        if asked != name:
            raise LookupError(f"netops' stand-in for {_METADATA} knows only {name}, not {asked}")
        return version

    module.version = version_of  # type: ignore[attr-defined]
    return module


_lent: types.ModuleType | None = None
if "paramiko" not in sys.modules and _METADATA not in sys.modules:
    _version = _dist_version("paramiko")
    if _version is not None:
        _lent = sys.modules[_METADATA] = _metadata_stand_in("paramiko", _version)
_hide = "invoke" not in sys.modules and "paramiko" not in sys.modules
if _hide:
    sys.modules["invoke"] = None  # type: ignore[assignment]  # makes `import invoke` fail
try:
    try:
        import paramiko
    except (AttributeError, LookupError):
        if _lent is None:
            raise
        del sys.modules[_METADATA]  # this paramiko wants more of importlib.metadata
        _lent = None
        import paramiko
    import paramiko.config
finally:
    if _hide:
        del sys.modules["invoke"]
    if _lent is not None and sys.modules.get(_METADATA) is _lent:
        del sys.modules[_METADATA]

# paramiko logs a failed handshake with its traceback from the transport's thread; with no
# handler configured, Python prints that to stderr, next to netops' own one-line account of the
# same failure. `--debug` configures logging and shows it.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

__all__ = ["paramiko"]
