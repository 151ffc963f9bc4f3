"""SSH transport: one paramiko connection per host, opened on first use and reused.

netops opens connections itself rather than through Fabric's `Connection` (building one per
host cost about 6 ms of CPU, and importing Fabric and Invoke about 0.1 s):

- ssh_config (HostName, User, Port, IdentityFile, IdentitiesOnly, ProxyJump, ProxyCommand,
  UserKnownHostsFile, KexAlgorithms, Ciphers) is parsed once per file and indexed (`sshconfig`);
- known_hosts files are parsed once and indexed; each client gets only its own host's keys
  (`known_hosts`), strict by default;
- the socket is netops' own, with TCP_NODELAY (paramiko leaves Nagle on, which cost ~45 ms per
  handshake and per command) and TCP keepalives from ServerAliveInterval/CountMax (a node that
  vanishes is found in under a minute, see `channel._Watchdog`); a ProxyJump hop is one shared
  connection per jump host, each target a `direct-tcpip` channel on it;
- private keys are parsed once per run; commands run on raw session channels (`channel`).
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netops.errors import (
    AuthFailed,
    ConnectionLost,
    HostKeyRejected,
    TransportError,
    Unreachable,
    UserError,
)
from netops.transport import known_hosts
from netops.transport._paramiko import paramiko
from netops.transport.base import Command, Completed, HostKeyMode, read_file
from netops.transport.channel import Keepalive, run_batch, run_on_channel
from netops.transport.sshconfig import Resolved, Resolver, key_path, split_hop

if TYPE_CHECKING:
    from netops.inventory.model import Host
    from netops.transport.dial import Dialer

MAX_HOPS = 8
"""ProxyJump chains longer than this are refused (they are almost surely a loop)."""


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


def _first(preferred: tuple[str, ...], defaults: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(a for a in preferred if a in defaults) + tuple(
        a for a in defaults if a not in preferred)


class _Transport(paramiko.Transport):
    """paramiko's transport with AES-GCM first (one AEAD pass instead of a cipher plus an
    HMAC, ~25% less client CPU per handshake). The key exchange keeps paramiko's order, the
    post-quantum hybrid (ML-KEM) first: a faster exchange is a choice for ssh_config's
    `KexAlgorithms`, which netops honours, not a default to take away."""

    _preferred_ciphers = _first(("aes128-gcm@openssh.com", "aes256-gcm@openssh.com"),
                                getattr(paramiko.Transport, "_preferred_ciphers", ()))


class SshConnector:
    """Per-run factory of `SshTransport`s; parses ssh_config, known_hosts and keys once."""

    def __init__(self, options: SshOptions, resolver: Resolver | None = None,
                 dialer: Dialer | None = None) -> None:
        """`resolver` and `dialer`: made before paramiko was loaded, to dial ahead."""
        self.options = options
        self.known = known_hosts.KnownHosts(options.host_keys, options.extra_known_hosts)
        self.resolver = resolver or Resolver(options.ssh_config)
        self.dialer = dialer
        self._keys: dict[str, paramiko.PKey | None] = {}
        self._gateways: dict[tuple[Any, ...], _Gateway] = {}
        self._warm: dict[str, SshTransport] = {}
        self._lock = threading.Lock()

    def transport(self, host: Host) -> SshTransport:
        """A lazily connecting transport for `host` (the one `warm` is opening, if any)."""
        warm = self._warm.pop(host.name, None)
        return warm if warm is not None else SshTransport(self, host)

    def warm(self, hosts: Sequence[Host], forks: int) -> threading.Event:
        """Start opening connections to `hosts` in the background, `forks` at a time, while
        the caller finishes its own set-up (imports, plan, journal): handshakes spend most of
        their time waiting for the node. `transport(host)` then hands out the connection in
        flight; a failure is kept and raised by its first command, as without warming.
        Returns an event set once every host is connected or has failed to."""
        todo = [SshTransport(self, h) for h in hosts]
        for t in todo:
            self._warm[t.host] = t
        settled = threading.Event()

        def work() -> None:
            from netops.engine.parallel import each

            try:
                each(todo, SshTransport.open_quietly, forks)
                if self.dialer is not None:
                    self.dialer.close()  # what no host took (none should be left)
            finally:
                settled.set()

        threading.Thread(target=work, name="netops-warm", daemon=True).start()
        return settled

    def resolve(self, host: Host) -> Resolved:
        """Address, port, user, keys and proxies of `host` (cached per host)."""
        return self.resolver.resolve(host)

    def private_key(self, path: str) -> paramiko.PKey | None:
        """Parse a private key file once per run; None when it needs a passphrase."""
        found = self._keys.get(path, False)
        if found is not False:
            return found  # type: ignore[return-value]
        with self._lock:
            if path not in self._keys:
                self._keys[path] = _load_key(path)
            return self._keys[path]

    # -- jump hosts -----------------------------------------------------------------------
    def gateway(self, via: Host, hops: tuple[str, ...]) -> tuple[tuple[Any, ...], SshTransport]:
        """The shared connection to the last of `hops` (reached through the ones before it),
        counted as used once more; give the key back with `release`."""
        if len(hops) > MAX_HOPS:
            raise UserError(f"ProxyJump chain for {via.name} is longer than {MAX_HOPS} hops",
                            hint="is ProxyJump set for the jump host itself? (a loop)")
        user, name, port = split_hop(hops[-1])
        hop = replace(via, name=name, address=name, port=port, user=user, become=False,
                      ssh_args="",
                      groups=(), vars={"netops_ssh_config": via.vars.get("netops_ssh_config")}
                      if via.vars.get("netops_ssh_config") else {})
        key = (hops, hop.vars.get("netops_ssh_config"))
        with self._lock:
            gw = self._gateways.get(key)
            if gw is None:
                gw = self._gateways[key] = _Gateway(SshTransport(self, hop, hops[:-1]))
            gw.users += 1
        return key, gw.transport

    def release(self, key: tuple[Any, ...]) -> None:
        with self._lock:
            gw = self._gateways.get(key)
            if gw is None:
                return
            gw.users -= 1
            if gw.users > 0:
                return
            del self._gateways[key]
        gw.transport.close()


@dataclass
class _Gateway:
    transport: SshTransport
    users: int = 0


def _load_key(path: str) -> paramiko.PKey | None:
    full = key_path(path)
    try:
        return paramiko.PKey.from_path(full)
    except paramiko.PasswordRequiredException:
        return None  # leave it to the agent, as OpenSSH would ask for a passphrase
    except (paramiko.SSHException, ValueError) as e:
        raise UserError(f"cannot read private key {path}: {e}") from e


class SshTransport:
    """A `Transport` to one host over SSH; not thread-safe (one host, one worker), except
    that a jump host's transport is shared: its connection is opened under a lock."""

    def __init__(self, connector: SshConnector, host: Host,
                 hops: tuple[str, ...] | None = None) -> None:
        self.host = host.name
        self._spec = host
        self._connector = connector
        self._hops = hops
        """For a jump host inside a ProxyJump chain: the hops before it (None: ssh_config's)."""
        self._client: paramiko.SSHClient | None = None
        self._transport: paramiko.Transport | None = None
        self._gateway: tuple[Any, ...] | None = None
        self._spare: paramiko.Channel | None = None
        """A session channel opened ahead (by a warm-up) for the next command."""
        self._failed: TransportError | None = None
        """Why a background (warm-up) connection failed; raised by the first command."""
        self._lock = threading.Lock()
        self.user = host.user or "root"
        self._keepalive: Keepalive | None = Keepalive()

    # -- connection ---------------------------------------------------------------------
    def connection(self) -> paramiko.Transport:
        """The open paramiko transport, connecting (with retries) on first use."""
        t = self._transport
        if t is not None and t.is_active():
            return t
        with self._lock:
            if self._failed is not None:
                failed, self._failed = self._failed, None
                raise failed
            if self._transport is not None and self._transport.is_active():
                return self._transport
            if self._transport is not None:
                raise ConnectionLost(self.host, "the connection dropped earlier in this run")
            opts = self._connector.options
            attempt = 0
            while True:
                try:
                    self._transport = self._open()
                    return self._transport
                except Unreachable:
                    if attempt >= opts.connect_retries:
                        raise
                    attempt += 1
                    time.sleep(opts.retry_backoff_s * 2 ** (attempt - 1))

    def reach(self) -> None:
        """Connect now (nothing is run): raises `TransportError` when the host cannot be
        reached or refuses netops."""
        self.connection()

    def open_quietly(self) -> None:
        """Connect now, and open the first command's session channel too (sshd's set-up
        after authentication takes ~45 ms before it answers the first channel); keep a
        failure for the first command instead of raising it."""
        try:
            transport = self.connection()
            with self._lock:
                if self._spare is None:
                    self._spare = transport.open_session(
                        timeout=self._connector.options.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError):
            pass  # no spare channel: the first command opens its own
        except TransportError as e:
            self._failed = e
        except Exception as e:
            self._failed = TransportError(self.host, f"connecting failed: {e!r}")

    def _open(self) -> paramiko.Transport:
        opts, target = self._connector.options, self._connector.resolve(self._spec)
        self.user = target.user
        self._keepalive = keepalive_of(target)
        keys = [k for k in (self._connector.private_key(f) for f in target.key_files)
                if k is not None]
        client = paramiko.SSHClient()
        names = known_hosts.lookup_names(self.host, target.address, target.port)
        connect_name = target.address if target.port == 22 \
            else f"[{target.address}]:{target.port}"
        known_hosts.install(client, self._connector.known, connect_name,
                            self._connector.known.entries_for(names, target.known_hosts_files))
        sock = self._socket(target)
        factory: Any = _Transport
        if target.kex or target.ciphers:
            factory = _with_algorithms(target.kex, target.ciphers)
        try:
            client.connect(
                target.address, port=target.port, username=target.user,
                pkey=keys[0] if keys else None, sock=sock, timeout=opts.connect_timeout,
                banner_timeout=opts.connect_timeout, auth_timeout=opts.connect_timeout,
                allow_agent=not (keys and target.identities_only), look_for_keys=not keys,
                transport_factory=factory)
        except BaseException as e:
            client.close()
            self._drop_gateway()
            raise self._error(e, target) from e
        self._client = client
        t = client.get_transport()
        assert t is not None
        return t

    def _socket(self, target: Resolved) -> Any:
        timeout = self._connector.options.connect_timeout
        hops = target.proxy_jump if self._hops is None else self._hops
        if hops:
            self._gateway, gw = self._connector.gateway(self._spec, hops)
            try:
                return gw.connection().open_channel(
                    "direct-tcpip", (target.address, target.port), ("127.0.0.1", 0),
                    timeout=timeout)
            except TransportError:
                self._drop_gateway()
                raise
            except (paramiko.SSHException, OSError, EOFError) as e:
                self._drop_gateway()
                raise Unreachable(self.host, f"{target.address}:{target.port} through "
                                  f"{hops[-1]}: {e}") from e
        if target.proxy_command:
            try:
                return paramiko.ProxyCommand(target.proxy_command)
            except (paramiko.SSHException, OSError) as e:
                raise Unreachable(self.host, f"ProxyCommand {target.proxy_command!r}: {e}") \
                    from e
        return _tcp_socket(self.host, target.address, target.port, timeout,
                           keepalive_of(target), self._connector.dialer)

    def _error(self, e: BaseException, target: Resolved) -> BaseException:
        where = f"{target.address}:{target.port}"
        if isinstance(e, TransportError):
            return e
        if isinstance(e, paramiko.BadHostKeyException):
            return HostKeyRejected(
                self.host, f"the key of {e.hostname} CHANGED (got {e.key.get_name()} "
                f"{e.key.get_fingerprint().hex()}); possible man-in-the-middle; remove the old "
                "entry if the host was rebuilt")
        if isinstance(e, paramiko.AuthenticationException):
            return AuthFailed(self.host, f"as {target.user}@{target.address}: {e}")
        if isinstance(e, paramiko.SSHException):
            if "known_hosts" in str(e):
                return HostKeyRejected(self.host, f"{target.address} is not in known_hosts "
                                       "(strict); add it, or use --host-keys accept-new")
            return Unreachable(self.host, f"SSH handshake with {where}: {e}")
        if isinstance(e, (OSError, EOFError)):
            return Unreachable(self.host, f"{where}: {e}")
        return e

    def _drop_gateway(self) -> None:
        if self._gateway is not None:
            key, self._gateway = self._gateway, None
            self._connector.release(key)

    # -- Transport protocol -------------------------------------------------------------
    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        """Run `cmd`; through `sudo -n -u become_user` when it (or the inventory, with
        `ansible_become`, for every command of the host) asks to become another user."""
        transport = self.connection()
        become = self._spec.become_user
        sudo = (cmd.become or self._spec.become) and self.user != become
        return run_on_channel(transport, self.host, cmd, timeout=timeout, sudo=sudo,
                              stdin=stdin, channel=self._take_spare(),
                              keepalive=self._keepalive, user=become)

    def run_batch(self, cmds: Sequence[Command], *,
                  timeout: float | None = None) -> list[Completed | None]:
        """Read-only `cmds` in one round trip (see `channel.run_batch`)."""
        transport = self.connection()
        if self._spec.become:
            cmds = [replace(c, become=True) for c in cmds]
        become = self._spec.become_user
        return run_batch(transport, self.host, cmds, timeout=timeout,
                         sudo=self.user != become, channel=self._take_spare(),
                         keepalive=self._keepalive, user=become)

    def _take_spare(self) -> paramiko.Channel | None:
        with self._lock:  # two threads may run commands at once (diagnose's runbooks)
            spare, self._spare = self._spare, None
        if spare is not None and (spare.closed or not spare.active):
            return None
        return spare

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        q = shlex.quote(path)
        script = (f't=$(mktemp {q}.netops.XXXXXX) && cat > "$t" && chmod {mode:o} "$t" '
                  f'&& mv -f "$t" {q}')
        done = self.run(Command(script, become=True), stdin=data, timeout=60)
        if not done.ok:
            raise TransportError(self.host, f"writing {path} failed: {done.stderr.strip()}")

    def get(self, path: str) -> bytes:
        return read_file(self, path)

    def close(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.close()
        if self._client is not None:
            self._client.close()
        self._drop_gateway()

    def reset(self) -> None:
        """Forget a dropped connection so that the next command reconnects (after a reboot)."""
        self.close()
        self._client = None
        self._transport = None


_KEX: frozenset[str] = frozenset(getattr(paramiko.Transport, "_kex_info", {}))
_CIPHERS: frozenset[str] = frozenset(getattr(paramiko.Transport, "_cipher_info", {}))


_KEX_ALIASES = {"curve25519-sha256": "curve25519-sha256@libssh.org"}
"""RFC 8731's name for what paramiko knows only by its libssh name (OpenSSH takes both)."""


def _with_algorithms(kex: tuple[str, ...], ciphers: tuple[str, ...]) -> type[_Transport]:
    """A transport class honouring ssh_config's KexAlgorithms / Ciphers lists."""
    attrs: dict[str, Any] = {}
    if kex:
        kex = tuple(_KEX_ALIASES.get(a, a) for a in kex)
        attrs["_preferred_kex"] = tuple(a for a in kex if a in _KEX) \
            or getattr(_Transport, "_preferred_kex", ())
    if ciphers:
        attrs["_preferred_ciphers"] = tuple(
            a for a in ciphers if a in _CIPHERS) \
            or _Transport._preferred_ciphers
    return type("_ConfiguredTransport", (_Transport,), attrs)


def keepalive_of(target: Resolved) -> Keepalive | None:
    """The dead-peer settings of `target` (None: ServerAliveInterval 0, no probes)."""
    if target.server_alive_interval <= 0:
        return None
    return Keepalive(target.server_alive_interval, target.server_alive_count_max)


def _tcp_socket(name: str, address: str, port: int, timeout: float,
                keepalive: Keepalive | None = None,
                dialer: Dialer | None = None) -> socket.socket:
    try:
        sock = dialer.take(address, port, timeout) if dialer is not None else None
        if sock is None:
            sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as e:
        raise Unreachable(name, f"{address}:{port}: {e.strerror or e}") from e
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if keepalive is not None:
        _tcp_keepalive(sock, keepalive)
    if _QUICKACK is None:
        return sock
    acking = _AckingSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    acking.settimeout(timeout)
    return acking


_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class _AckingSocket(socket.socket):
    """A TCP socket that acknowledges what it reads at once (TCP_QUICKACK, set again after
    every read: Linux clears it by itself).

    sshd leaves Nagle's algorithm on for a session without a terminal, so a small packet it
    writes right after another one waits until the first is acknowledged, and Linux delays
    that acknowledgement up to 40 ms. Measured on one lab node, a fresh connection's first
    command took 65 ms from the start of the handshake to its exit status, 22 ms with this
    (the first session channel after authentication waited 42 ms)."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        self.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)  # type: ignore[arg-type]
        return data


def _tcp_keepalive(sock: socket.socket, keepalive: Keepalive) -> None:
    """Let the kernel find a dead peer too, on the same schedule as the SSH-level probes: TCP
    keepalives after `interval` idle seconds, `count_max` of them `interval` apart, and
    TCP_USER_TIMEOUT so that data left unacknowledged (a probe, a window update) for as long
    aborts the connection as well. This also covers a connection idle between commands, when
    no `_Watchdog` runs; paramiko's transport thread then sees the error and closes. Options
    the platform lacks are skipped (the SSH-level watchdog still applies)."""
    interval = max(1, round(keepalive.interval))
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", interval), ("TCP_KEEPINTVL", interval),
                        ("TCP_KEEPCNT", keepalive.count_max),
                        ("TCP_USER_TIMEOUT", round(keepalive.dead_after * 1000))):
        opt = getattr(socket, name, None)
        if opt is not None:
            options.append((socket.IPPROTO_TCP, opt, value))
    for level, opt, value in options:
        with contextlib.suppress(OSError):
            sock.setsockopt(level, opt, value)
