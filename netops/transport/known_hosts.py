"""Host-key verification: known_hosts parsed once per run, one policy per mode.

Fabric's `Connection` accepts every host key (it installs paramiko's `AutoAddPolicy`); netops
replaces that policy and gives each client only the known_hosts entries for its own host, so
strict checking costs O(1) per host instead of re-parsing every file per client.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import paramiko

from netops.transport.base import HostKeyMode


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


class KnownHosts:
    """Every known_hosts file that matters for a run, each parsed at most once."""

    def __init__(self, mode: HostKeyMode, extra_files: tuple[Path, ...] = ()) -> None:
        self.mode = mode
        self._files: dict[Path, paramiko.HostKeys] = {}
        self._lock = threading.Lock()
        self._record_file = netops_known_hosts_file()
        self._base = (*default_known_hosts_files(), *extra_files, self._record_file)

    def _parsed(self, path: Path) -> paramiko.HostKeys:
        with self._lock:
            if path not in self._files:
                keys = paramiko.HostKeys()
                if path.is_file():
                    keys.load(str(path))
                self._files[path] = keys
            return self._files[path]

    def entries_for(
        self, names: tuple[str, ...], extra_files: tuple[Path, ...] = ()
    ) -> dict[str, paramiko.PKey]:
        """Key type -> key for the first name found in any file (files in OpenSSH order)."""
        found: dict[str, paramiko.PKey] = {}
        for path in (*self._base, *extra_files):
            parsed = self._parsed(path)
            for name in names:
                for keytype, key in (parsed.lookup(name) or {}).items():
                    found.setdefault(keytype, key)
        return found

    def record(self, hostname: str, key: paramiko.PKey) -> None:
        """Append an accepted key to netops' own known_hosts (accept-new mode)."""
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            self._record_file.parent.mkdir(parents=True, exist_ok=True)
            with self._record_file.open("a") as f:
                f.write(line)


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
