"""paramiko, imported without Invoke.

`paramiko.config` imports Invoke at load time (about 35 ms) only to run `Match exec` lines of
ssh_config. netops hides Invoke during that import and hands it over later, only when an
ssh_config file it reads actually has a `Match ... exec` line (see `enable_match_exec`).
"""

from __future__ import annotations

import sys

_hide = "invoke" not in sys.modules and "paramiko" not in sys.modules
if _hide:
    sys.modules["invoke"] = None  # type: ignore[assignment]  # makes `import invoke` fail
try:
    import paramiko
    import paramiko.config
finally:
    if _hide:
        del sys.modules["invoke"]

__all__ = ["enable_match_exec", "paramiko"]


def enable_match_exec() -> None:
    """Give paramiko Invoke after all, for ssh_config files with `Match exec`."""
    if getattr(paramiko.config, "invoke", None) is None:
        import invoke

        paramiko.config.invoke = invoke  # type: ignore[attr-defined]
