"""Which sysctl assignment wins at boot (RUNBOOKS.md 1.2), computed from file listings.

systemd-sysctl reads `*.conf` from these directories; a file in an earlier directory masks a
same-named file in a later one; all surviving files are applied in order of their basename and
the last assignment wins. procps `sysctl --system` applies `/etc/sysctl.conf` after them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d",
               "/usr/lib/sysctl.d", "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"

_ASSIGN = re.compile(r"^\s*-?\s*([A-Za-z0-9_.\-/*]+)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Assignment:
    """One `key = value` line of a sysctl file."""

    path: str
    line: int
    key: str
    value: str


def normalize_key(key: str) -> str:
    """`net/ipv4/ip_forward` and `net.ipv4.ip_forward` name the same key."""
    return key.replace("/", ".")


def boot_order(files: Mapping[str, str]) -> list[str]:
    """The files applied at boot, in order, from a mapping path -> content.

    `files` holds every `*.conf` found in SYSCTL_DIRS plus `/etc/sysctl.conf` if present.
    """
    chosen: dict[str, str] = {}
    for directory in SYSCTL_DIRS:
        for path in files:
            base = path.rsplit("/", 1)[-1]
            if path.rsplit("/", 1)[0] == directory and base.endswith(".conf"):
                chosen.setdefault(base, path)
    ordered = [chosen[b] for b in sorted(chosen)]
    if SYSCTL_CONF in files:
        ordered.append(SYSCTL_CONF)
    return ordered


def assignments(files: Mapping[str, str], key: str) -> list[Assignment]:
    """Every assignment of `key`, in the order they are applied at boot."""
    want = normalize_key(key)
    found: list[Assignment] = []
    for path in boot_order(files):
        for n, line in enumerate(files[path].splitlines(), 1):
            if line.lstrip().startswith(("#", ";")):
                continue
            m = _ASSIGN.match(line)
            if m and normalize_key(m.group(1)) == want:
                found.append(Assignment(path, n, want, m.group(2)))
    return found


def boot_value(files: Mapping[str, str], key: str) -> Assignment | None:
    """The assignment that wins at boot, or None when nothing sets `key`."""
    found = assignments(files, key)
    return found[-1] if found else None
