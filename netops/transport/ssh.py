"""SSH transport: one Fabric `Connection` per host, opened on first use and reused.

Fabric resolves ssh_config (HostName, User, Port, IdentityFile, ProxyJump) and opens the
connection; netops supplies what Fabric lacks: host-key verification (see `known_hosts`), a
TCP_NODELAY socket (paramiko leaves Nagle on, costing ~45 ms per handshake and per command), keys
parsed once per run, typed errors, and commands on raw channels (see `channel`).
"""

from __future__ import annotations

import shlex
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko
from fabric import Config, Connection

from netops.errors import (
    AuthFailed,
    ConnectionLost,
    HostKeyRejected,
    TransportError,
    Unreachable,
    UserError,
)
from netops.transport import known_hosts
from netops.transport.base import Command, Completed, HostKeyMode
from netops.transport.channel import run_on_channel

if TYPE_CHECKING:
    from netops.inventory.model import Host


@dataclass(frozen=True, slots=True)
class SshOptions:
    """Run-wide SSH settings (from the CLI; per-host values come from the inventory)."""

    host_keys: HostKeyMode = HostKeyMode.STRICT
    connect_timeout: float = 10.0
    connect_retries: int = 2
    """Extra attempts for connection set-up only (never for commands), with backoff."""
    retry_backoff_s: float = 0.5
    ssh_config: Path | None = None
    """An ssh_config file to use instead of ~/.ssh/config and /etc/ssh/ssh_config."""
    extra_known_hosts: tuple[Path, ...] = field(default_factory=tuple)


class SshConnector:
    """Per-run factory of `SshTransport`s; parses ssh_config, known_hosts and keys once."""

    def __init__(self, options: SshOptions) -> None:
        self.options = options
        self.known = known_hosts.KnownHosts(options.host_keys, options.extra_known_hosts)
        self._configs: dict[Path | None, Config] = {}
        self._keys: dict[str, paramiko.PKey | None] = {}
        self._lock = threading.Lock()

    def transport(self, host: Host) -> SshTransport:
        """A lazily connecting transport for `host`."""
        return SshTransport(self, host)

    def fabric_config(self, host: Host) -> Config:
        """One Fabric Config per ssh_config file (the inventory may name one per host)."""
        path = self.options.ssh_config
        named = host.vars.get("netops_ssh_config")
        if path is None and isinstance(named, str):
            path = Path(named)
        with self._lock:
            if path not in self._configs:
                if path is not None and not path.is_file():
                    raise UserError(f"ssh config file {path} does not exist",
                                    hint="fix netops_ssh_config or --ssh-config")
                kwargs: dict[str, Any] = {"runtime_ssh_path": str(path)} if path else {}
                self._configs[path] = Config(**kwargs)
            return self._configs[path]

    def private_key(self, path: str) -> paramiko.PKey | None:
        """Parse a private key file once per run; None when it needs a passphrase."""
        with self._lock:
            if path not in self._keys:
                self._keys[path] = _load_key(path)
            return self._keys[path]


def _load_key(path: str) -> paramiko.PKey | None:
    full = Path(path).expanduser()
    if not full.is_file():
        raise UserError(f"private key file {path} does not exist",
                        hint="fix ansible_ssh_private_key_file or IdentityFile")
    try:
        return paramiko.PKey.from_path(full)
    except paramiko.PasswordRequiredException:
        return None  # leave it to the agent, as OpenSSH would ask for a passphrase
    except (paramiko.SSHException, ValueError) as e:
        raise UserError(f"cannot read private key {path}: {e}") from e


class SshTransport:
    """A `Transport` to one host over SSH; not thread-safe (one host, one worker)."""

    def __init__(self, connector: SshConnector, host: Host) -> None:
        self.host = host.name
        self._spec = host
        self._connector = connector
        self._conn: Connection | None = None
        self.user = "root"

    # -- connection ---------------------------------------------------------------------
    def _connection(self) -> Connection:
        if self._conn is not None and self._conn.transport is not None \
                and self._conn.transport.is_active():
            return self._conn
        if self._conn is not None:
            raise ConnectionLost(self.host, "the connection dropped earlier in this run")
        opts = self._connector.options
        attempt = 0
        while True:
            try:
                self._conn = self._open()
                return self._conn
            except Unreachable:
                if attempt >= opts.connect_retries:
                    raise
                attempt += 1
                time.sleep(opts.retry_backoff_s * 2 ** (attempt - 1))

    def _open(self) -> Connection:
        spec, opts = self._spec, self._connector.options
        conn = Connection(
            spec.name, user=spec.user, port=spec.port,
            config=self._connector.fabric_config(spec),
            connect_timeout=int(opts.connect_timeout) or None,
        )
        if spec.address != spec.name:
            conn.host = spec.address  # the inventory's ansible_host beats ssh_config HostName
        self.user = conn.user
        kwargs = conn.connect_kwargs
        keyfiles = ([spec.key_file] if spec.key_file else []) + list(kwargs.pop("key_filename", []))
        keys = [k for k in (self._connector.private_key(f) for f in keyfiles) if k is not None]
        if keys:
            kwargs["pkey"] = keys[0]
        kwargs.update(banner_timeout=opts.connect_timeout, auth_timeout=opts.connect_timeout)
        self._verify_keys(conn)
        if not conn.gateway:
            kwargs["sock"] = _tcp_socket(self.host, conn.host, conn.port, opts.connect_timeout)
        try:
            conn.open()
        except paramiko.BadHostKeyException as e:
            raise HostKeyRejected(self.host, f"the key of {e.hostname} CHANGED (got "
                                  f"{e.key.get_name()} {e.key.get_fingerprint().hex()}); "
                                  "possible man-in-the-middle; remove the old entry if the "
                                  "host was rebuilt") from e
        except paramiko.AuthenticationException as e:
            raise AuthFailed(self.host, f"as {conn.user}@{conn.host}: {e}") from e
        except paramiko.SSHException as e:
            if "known_hosts" in str(e):
                raise HostKeyRejected(self.host, f"{conn.host} is not in known_hosts (strict);"
                                      " add it, or use --host-keys accept-new") from e
            raise Unreachable(self.host, f"SSH handshake with {conn.host}:{conn.port}: {e}") \
                from e
        except (OSError, EOFError) as e:
            raise Unreachable(self.host, f"{conn.host}:{conn.port}: {e}") from e
        return conn

    def _verify_keys(self, conn: Connection) -> None:
        names = known_hosts.lookup_names(self.host, conn.host, conn.port)
        files = tuple(Path(p).expanduser() for p in
                      _config_list(conn.ssh_config, "userknownhostsfile")
                      + _config_list(conn.ssh_config, "globalknownhostsfile"))
        keys = self._connector.known.entries_for(names, files)
        connect_name = conn.host if conn.port == 22 else f"[{conn.host}]:{conn.port}"
        known_hosts.install(conn.client, self._connector.known, connect_name, keys)

    # -- Transport protocol -------------------------------------------------------------
    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        conn = self._connection()
        sudo = cmd.become and self.user != "root"
        assert conn.transport is not None
        return run_on_channel(conn.transport, self.host, cmd, timeout=timeout, sudo=sudo,
                              stdin=stdin)

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        q = shlex.quote(path)
        script = (f't=$(mktemp {q}.netops.XXXXXX) && cat > "$t" && chmod {mode:o} "$t" '
                  f'&& mv -f "$t" {q}')
        done = self.run(Command(script, become=True), stdin=data, timeout=60)
        if not done.ok:
            raise TransportError(self.host, f"writing {path} failed: {done.stderr.strip()}")

    def get(self, path: str) -> bytes:
        done = self.run(Command(f"cat {shlex.quote(path)}", become=True, readonly=True), timeout=60)
        if not done.ok:
            raise TransportError(self.host, f"reading {path} failed: {done.stderr.strip()}")
        return done.stdout.encode()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def reset(self) -> None:
        """Forget a dropped connection so that the next command reconnects (after a reboot)."""
        self.close()
        self._conn = None


def _tcp_socket(name: str, address: str, port: int, timeout: float) -> socket.socket:
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as e:
        raise Unreachable(name, f"{address}:{port}: {e.strerror or e}") from e
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _config_list(cfg: Mapping[str, Any], key: str) -> list[str]:
    value = cfg.get(key, [])
    if isinstance(value, str):
        return value.split()
    return [p for item in value for p in str(item).split()]
