"""The fast paths of the SSH transport against a real sshd: batched reads, ProxyJump through a
shared jump connection, ProxyCommand, and ssh_config/known_hosts read once per run."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from netops.engine.readahead import Read, ReadAhead
from netops.errors import HostKeyRejected, TimedOut, Unreachable
from netops.inventory.model import Host
from netops.transport.base import Command, HostKeyMode
from netops.transport.channel import BACKSTOP_S, KILL_GRACE_S
from netops.transport.dial import Dialer
from netops.transport.ssh import SshConnector, SshOptions
from netops.transport.sshconfig import Resolver
from tests.contract.sshd import Sshd


def host(sshd: Sshd, config: Path, name: str = "box", **over: object) -> Host:
    fields: dict[str, object] = {"name": name, "address": name, "port": None, "user": None,
                                 "key_file": None, "become": False, "groups": ("all",),
                                 "vars": {"netops_ssh_config": str(config)}}
    fields.update(over)
    return Host(**fields)  # type: ignore[arg-type]


def connector() -> SshConnector:
    return SshConnector(SshOptions(host_keys=HostKeyMode.STRICT, connect_timeout=3,
                                   connect_retries=0))


def test_a_batch_is_one_channel_with_every_outcome_apart(sshd: Sshd) -> None:
    t = connector().transport(host(sshd, sshd.ssh_config))
    got = t.run_batch([Command("echo $PPID; echo e >&2; exit 2", readonly=True),
                       Command("printf 'no newline'", readonly=True),
                       Command("echo $PPID", readonly=True)], timeout=10)
    assert [(c.rc, c.stderr) for c in got if c] == [(2, "e\n"), (0, ""), (0, "")]
    assert got[1] is not None and got[1].stdout == "no newline"
    # both subshells are children of the same batch shell: one channel, one shell
    assert got[0] is not None and got[2] is not None and got[0].stdout == got[2].stdout
    # the batch's timeout stops it on the node; what finished is kept
    # (a duration no other test uses: the node here is this machine, shared with them)
    cut = t.run_batch([Command("echo done", readonly=True),
                       Command("sleep 31.5", readonly=True)], timeout=1)
    assert cut[0] is not None and cut[0].stdout == "done\n" and cut[1] is None
    # (anchored: the watcher, whose argv holds the batch's text, outlives it by the
    # TERM-to-KILL grace)
    left = t.run(Command("pgrep -af '^slee[p] 31.5' || true")).stdout.strip()
    assert left == "", f"the batch left processes behind: {left}"
    # a command that ignores TERM is killed after the grace; the batch still ends
    started = time.monotonic()
    stubborn = t.run_batch([Command("echo first", readonly=True),
                            Command("trap '' TERM; sleep 31.7", readonly=True)], timeout=1)
    assert stubborn[0] is not None and stubborn[1] is None
    assert time.monotonic() - started < 1 + KILL_GRACE_S + BACKSTOP_S
    left = t.run(Command("pgrep -af '^slee[p] 31.7' || true")).stdout.strip()
    assert left == "", f"a TERM-proof command outlived its batch: {left}"
    t.close()


def test_a_direct_connection_acknowledges_at_once(sshd: Sshd) -> None:
    # TCP_QUICKACK re-armed after every read (ssh._AckingSocket): sshd's Nagle-held packets
    # do not wait for a delayed ACK; TCP_NODELAY for ours
    t = connector().transport(host(sshd, sshd.ssh_config))
    assert t.run(Command("true")).ok
    sock = t.connection().sock
    assert isinstance(sock, socket.socket)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    assert type(sock).recv is not socket.socket.recv  # the acking read, not the plain one
    t.close()


def test_read_ahead_over_ssh_then_a_timeout_of_its_own(sshd: Sshd) -> None:
    slow = Command("sleep 32.5", readonly=True)
    t = ReadAhead(connector().transport(host(sshd, sshd.ssh_config)),
                  [Read(Command("hostname", readonly=True), 1), Read(slow, 1)])
    assert t.run(Command("hostname", readonly=True), timeout=1).ok
    with pytest.raises(TimedOut):  # not finished in the batch: run again, on its own
        t.run(slow, timeout=1)
    t.close()


def jump_config(sshd: Sshd, tmp: Path, extra: str) -> Path:
    cfg = tmp / "jump_config"
    cfg.write_text(
        f"Host jump\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User root\n"
        f"  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {sshd.known_hosts}\n"
        f"Host inner*\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User root\n"
        f"  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {sshd.known_hosts}\n"
        f"{extra}")
    return cfg


def test_proxyjump_shares_one_jump_connection(sshd: Sshd, tmp_path: Path) -> None:
    cfg = jump_config(sshd, tmp_path, "  ProxyJump jump\n")
    c = connector()
    a, b = c.transport(host(sshd, cfg, "inner1")), c.transport(host(sshd, cfg, "inner2"))
    # through the jump host, sshd sees the forwarded connection come from itself
    assert a.run(Command("echo $SSH_CLIENT")).stdout.startswith("127.0.0.1 ")
    assert b.run(Command("true")).ok
    assert len(c._gateways) == 1  # one jump connection for both targets
    gateway = next(iter(c._gateways.values()))
    assert gateway.users == 2
    a.close()
    b.close()
    assert c._gateways == {}


def test_proxyjump_checks_the_jump_hosts_key(sshd: Sshd, tmp_path: Path) -> None:
    cfg = jump_config(sshd, tmp_path, "  ProxyJump jump\nHost jump\n  UserKnownHostsFile "
                      f"{tmp_path}/empty\n")
    (tmp_path / "empty").write_text("")
    cfg.write_text(cfg.read_text().replace(f"  UserKnownHostsFile {sshd.known_hosts}\nHost "
                                           "inner*", f"  UserKnownHostsFile {tmp_path}/empty"
                                           "\nHost inner*", 1))
    with pytest.raises(HostKeyRejected):
        connector().transport(host(sshd, cfg, "inner1")).run(Command("true"))


def test_proxycommand(sshd: Sshd, tmp_path: Path) -> None:
    cfg = tmp_path / "jump_config"
    jump_config(sshd, tmp_path, f"  ProxyCommand ssh -F {cfg} -o BatchMode=yes -W %h:%p jump\n")
    t = connector().transport(host(sshd, cfg, "inner1"))
    assert t.run(Command("echo via-proxy")).stdout == "via-proxy\n"
    t.close()


class RecordingDialer(Dialer):
    """Remembers the local address of each socket it hands over."""

    def __init__(self) -> None:
        super().__init__()
        self.given: list[tuple[str, int] | None] = []

    def take(self, address: str, port: int, timeout: float) -> socket.socket | None:
        got = super().take(address, port, timeout)
        self.given.append(None if got is None else got.getsockname())
        return got


def test_a_host_dialled_ahead_connects_on_that_socket(sshd: Sshd, tmp_path: Path) -> None:
    resolver, dialer = Resolver(), RecordingDialer()
    box = host(sshd, sshd.ssh_config)
    dialer.start([resolver.resolve(box)])
    dialer.wait(5)
    t = SshConnector(SshOptions(host_keys=HostKeyMode.STRICT, connect_timeout=3,
                                connect_retries=0), resolver, dialer).transport(box)
    client = t.run(Command("echo $SSH_CLIENT")).stdout.split()
    assert dialer.given and dialer.given[0] is not None
    assert int(client[1]) == dialer.given[0][1]  # sshd saw the dialled socket's port
    assert dialer.take("127.0.0.1", sshd.port, 1) is None  # handed out once
    t.close()


def test_dialling_ahead_skips_proxies_and_a_failed_dial_is_the_first_attempt(
        sshd: Sshd, tmp_path: Path) -> None:
    cfg = jump_config(sshd, tmp_path, "  ProxyJump jump\n")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    resolver, dialer = Resolver(), Dialer()
    inner, dead = host(sshd, cfg, "inner1"), host(sshd, cfg, "jump", port=dead_port)
    dialer.start([resolver.resolve(inner), resolver.resolve(dead)])
    dialer.wait(5)
    assert dialer.take("127.0.0.1", sshd.port, 1) is None  # behind ProxyJump: not dialled
    c = SshConnector(SshOptions(host_keys=HostKeyMode.STRICT, connect_timeout=3,
                                connect_retries=0), resolver, dialer)
    with pytest.raises(Unreachable, match="refused"):  # the dialled connect, refused
        c.transport(dead).run(Command("true"))
    assert c.transport(inner).run(Command("echo via-jump")).stdout == "via-jump\n"
    again = Dialer()
    again.start([resolver.resolve(dead)])
    again.wait(5)
    with pytest.raises(ConnectionRefusedError):
        again.take("127.0.0.1", dead_port, 1)
    assert again.take("127.0.0.1", dead_port, 1) is None  # a retry connects on its own
