"""paramiko, imported once, with its log kept off stderr.

paramiko logs a failed handshake with its traceback from the transport's thread; with no
handler configured, Python prints that to stderr, next to netops' own one-line account of the
same failure. `--debug` configures logging and shows it.

Start-up cost, measured (issue 16): `import paramiko` takes about 140 ms here, of which ~35 ms
is `paramiko.config` importing Invoke (for `Match exec`, which netops' own ssh_config reader
handles) and ~15 ms is `importlib.metadata` (paramiko's `__version__`). netops pays it rather
than hide modules from the import system; it is paid only by commands that reach a node.
"""

from __future__ import annotations

import logging

import paramiko

logging.getLogger("paramiko").addHandler(logging.NullHandler())

__all__ = ["paramiko"]
