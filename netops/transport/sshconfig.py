"""ssh_config, parsed once per file and looked up in O(1) per host.

paramiko's `SSHConfig.lookup` tests every `Host` block against the name; a fleet's ssh_config
(one block per node, as the lab writes it) makes that O(N) per host and O(N^2) per run, about
7 s of CPU for 500 nodes. Here blocks whose patterns are all literal names are indexed by name;
a look-up hands paramiko's own `lookup` only the blocks that can match (those for the name,
plus every wildcard, negated and `Match` block, in file order), so its semantics (first value
wins, tokens, `Match`) are unchanged.
"""

from __future__ import annotations

import getpass
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netops.transport._paramiko import enable_match_exec, paramiko

DEFAULT_ALIVE_INTERVAL = 10.0
DEFAULT_ALIVE_COUNT_MAX = 3
"""netops' defaults for ServerAliveInterval / ServerAliveCountMax (OpenSSH's are 0, off, and
3): a node that vanishes mid-step is declared dead after 10 x (3 + 1) = 40 s of silence, well
inside the default step timeout (300 s)."""

_WILD = re.compile(r"[*?!\[]")
_MATCH_EXEC = re.compile(r"^\s*match\b.*\bexec\b", re.IGNORECASE | re.MULTILINE)


def default_files() -> tuple[Path, ...]:
    """What OpenSSH reads without -F: the user's file first, then the system's."""
    return (Path.home() / ".ssh" / "config", Path("/etc/ssh/ssh_config"))


class SshConfig:
    """One or more ssh_config files (read in order, as OpenSSH reads them), indexed."""

    def __init__(self, files: tuple[Path, ...]) -> None:
        self.files = files
        self._config = paramiko.SSHConfig()
        for path in files:
            try:
                text = path.read_text()
            except OSError:
                continue
            if _MATCH_EXEC.search(text):
                enable_match_exec()
            self._config.parse(text.splitlines(keepends=True))
        blocks: list[dict[str, Any]] = getattr(self._config, "_config", None) or []
        self._blocks = blocks
        self._literal: dict[str, list[int]] = {}
        self._always: list[int] = []
        self._indexed = bool(blocks) and not any(
            "canonicalizehostname" in b.get("config", {}) for b in blocks)
        for i, block in enumerate(blocks):
            patterns = block.get("host")
            if patterns and not any(_WILD.search(p) for p in patterns):
                for p in patterns:
                    self._literal.setdefault(p, []).append(i)
            else:
                self._always.append(i)
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def lookup(self, name: str) -> Mapping[str, Any]:
        """paramiko's resolved options for `name` (lower-case keys), cached per name."""
        found = self._cache.get(name)
        if found is not None:
            return found
        if self._indexed:
            wanted = sorted({*self._literal.get(name, ()), *self._always})
            sub = paramiko.SSHConfig()
            sub._config = [self._blocks[i] for i in wanted]  # type: ignore[attr-defined]
            found = dict(sub.lookup(name))
        else:
            found = dict(self._config.lookup(name))
        with self._lock:
            self._cache[name] = found
        return found


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where and how to connect to one host: the inventory over ssh_config over defaults."""

    name: str
    address: str
    port: int
    user: str
    key_files: tuple[str, ...]
    identities_only: bool
    proxy_jump: tuple[str, ...]
    """Jump hosts, first hop first ([user@]host[:port] each)."""
    proxy_command: str | None
    known_hosts_files: tuple[Path, ...]
    kex: tuple[str, ...]
    ciphers: tuple[str, ...]
    server_alive_interval: float = DEFAULT_ALIVE_INTERVAL
    """Seconds of silence before the peer is probed; 0 turns the probes off (as in OpenSSH)."""
    server_alive_count_max: int = DEFAULT_ALIVE_COUNT_MAX
    """Probes left unanswered before the connection is declared dead."""


def resolve(config: SshConfig, name: str, address: str, port: int | None, user: str | None,
            key_file: str | None) -> Resolved:
    """The inventory's ansible_host/port/user/key win over ssh_config, as they did in Fabric
    (`Connection(host, user=, port=)` with ssh_config underneath)."""
    conf = config.lookup(name)
    jump = str(conf.get("proxyjump", "") or "")
    command = conf.get("proxycommand")
    return Resolved(
        name=name,
        address=address if address != name else str(conf.get("hostname", name)),
        port=port or int(conf.get("port", 22)),
        user=user or str(conf.get("user", "") or "") or getpass.getuser(),
        key_files=tuple(dict.fromkeys(([key_file] if key_file else [])
                                      + _as_list(conf.get("identityfile")))),
        identities_only=str(conf.get("identitiesonly", "no")).lower() == "yes",
        proxy_jump=() if jump.lower() in ("", "none") else tuple(
            h.strip() for h in jump.split(",") if h.strip()),
        proxy_command=None if not command or str(command).lower() == "none" else str(command),
        known_hosts_files=tuple(Path(p).expanduser() for p in
                                _as_list(conf.get("userknownhostsfile"))
                                + _as_list(conf.get("globalknownhostsfile"))),
        kex=_algorithms(conf.get("kexalgorithms")),
        ciphers=_algorithms(conf.get("ciphers")),
        server_alive_interval=_number(conf.get("serveraliveinterval"), DEFAULT_ALIVE_INTERVAL),
        server_alive_count_max=max(1, int(_number(conf.get("serveralivecountmax"),
                                                  DEFAULT_ALIVE_COUNT_MAX))),
    )


def split_hop(hop: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` (ProxyJump syntax; `[v6]:port` too) -> (user, host, port)."""
    user, _, rest = hop.rpartition("@")
    host, port = rest, None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = int(tail[1:]) if tail.startswith(":") else None
    elif rest.count(":") == 1:
        host, _, p = rest.partition(":")
        port = int(p)
    return user or None, host, port


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return value.split()
    return [p for item in value for p in str(item).split()]


def _number(value: Any, default: float) -> float:
    """A non-negative number from ssh_config (the first value wins, as paramiko reads it);
    `default` when absent or unreadable."""
    try:
        found = float(str(value).split()[0]) if value not in (None, "") else default
    except (ValueError, IndexError):
        return default
    return found if found >= 0 else default


def _algorithms(value: Any) -> tuple[str, ...]:
    """An explicit algorithm list from ssh_config; '+', '-' and '^' edits are left to the
    defaults (they only add, remove or reorder around them)."""
    if not value or str(value)[0] in "+-^":
        return ()
    return tuple(a for a in str(value).split(",") if a)
