"""Host-key verification: known_hosts parsed once per run, one policy per mode.

Every known_hosts file is parsed once and indexed by host name, so finding one host's keys is a
dictionary look-up (hashed `|1|` entries still need one HMAC each, as in OpenSSH); paramiko's
own `HostKeys.lookup` scans every entry, which made strict checking O(N^2) over a fleet. Each
client is then given only its own host's entries and the policy of the run's mode.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from netops.transport._paramiko import paramiko
from netops.transport.base import HostKeyMode

HostKeyEntry = paramiko.hostkeys.HostKeyEntry


def default_known_hosts_files() -> tuple[Path, ...]:
    """The files OpenSSH reads by default: the system file, then the user's."""
    return (Path("/etc/ssh/ssh_known_hosts"), Path.home() / ".ssh" / "known_hosts")


def netops_known_hosts_file() -> Path:
    """Where `accept-new` records keys: netops' own file, never the user's ~/.ssh."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "netops" / "known_hosts"


def lookup_names(name: str, address: str, port: int) -> tuple[str, ...]:
    """The known_hosts names a host may be recorded under: its address and its inventory name,
    bracketed with the port when it is not 22 (OpenSSH's convention)."""
    names = dict.fromkeys((address, name))
    if port == 22:
        return tuple(names)
    return tuple(f"[{n}]:{port}" for n in names)


@dataclass
class _Indexed:
    """One known_hosts file: plain names -> keys by type, plus the hashed entries."""

    plain: dict[str, dict[str, paramiko.PKey]] = field(default_factory=dict)
    hashed: list[HostKeyEntry] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> _Indexed:
        index = cls()
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return index
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                entry = HostKeyEntry.from_line(line, lineno)
            except (paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, ValueError):
                continue  # as paramiko's own loader: a bad line is skipped, not fatal
            if entry is None or entry.key is None:
                continue
            for name in entry.hostnames:
                if name.startswith("|1|"):
                    index.hashed.append(entry)
                    break
                index.plain.setdefault(name, {}).setdefault(entry.key.get_name(), entry.key)
        return index

    def lookup(self, name: str) -> dict[str, paramiko.PKey]:
        found = dict(self.plain.get(name, {}))
        for entry in self.hashed:
            for h in entry.hostnames:
                if h.startswith("|1|") and paramiko.HostKeys.hash_host(name, h) == h:
                    found.setdefault(entry.key.get_name(), entry.key)
        return found


class KnownHosts:
    """Every known_hosts file that matters for a run, each parsed at most once."""

    def __init__(self, mode: HostKeyMode, extra_files: tuple[Path, ...] = ()) -> None:
        self.mode = mode
        self._files: dict[Path, _Indexed] = {}
        self._lock = threading.Lock()
        self._record_file = netops_known_hosts_file()
        self._base = (*default_known_hosts_files(), *extra_files, self._record_file)

    def _parsed(self, path: Path) -> _Indexed:
        index = self._files.get(path)
        if index is None:
            with self._lock:
                index = self._files.get(path)
                if index is None:
                    index = self._files[path] = _Indexed.load(path)
        return index

    def entries_for(
        self, names: tuple[str, ...], extra_files: tuple[Path, ...] = ()
    ) -> dict[str, paramiko.PKey]:
        """Key type -> key for the first name found in any file (files in OpenSSH order)."""
        found: dict[str, paramiko.PKey] = {}
        for path in dict.fromkeys((*self._base, *extra_files)):
            parsed = self._parsed(path)
            for name in names:
                for keytype, key in parsed.lookup(name).items():
                    found.setdefault(keytype, key)
        return found

    def record(self, hostname: str, key: paramiko.PKey) -> None:
        """Append an accepted key to netops' own known_hosts (accept-new mode)."""
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            self._record_file.parent.mkdir(parents=True, exist_ok=True)
            with self._record_file.open("a") as f:
                f.write(line)
            self._files.pop(self._record_file, None)  # re-read if looked up again


def install(client: paramiko.SSHClient, store: KnownHosts, connect_name: str,
            keys: dict[str, paramiko.PKey]) -> None:
    """Give `client` only its own host's keys and the policy of the run's mode."""
    if store.mode is HostKeyMode.OFF:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        return
    host_keys = client.get_host_keys()
    host_keys.clear()
    for key in keys.values():
        host_keys.add(connect_name, key.get_name(), key)
    if store.mode is HostKeyMode.ACCEPT_NEW:
        client.set_missing_host_key_policy(_RecordPolicy(store))
    else:
        client.set_missing_host_key_policy(paramiko.RejectPolicy())


class _RecordPolicy(paramiko.MissingHostKeyPolicy):
    """paramiko missing-host-key policy that records the key in netops' known_hosts."""

    def __init__(self, store: KnownHosts) -> None:
        self.store = store

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        self.store.record(hostname, key)
