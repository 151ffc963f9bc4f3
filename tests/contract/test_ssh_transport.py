"""The SSH transport against a real OpenSSH server on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from netops.errors import AuthFailed, HostKeyRejected, TimedOut, Unreachable
from netops.inventory.model import Host
from netops.transport.base import Command, HostKeyMode
from netops.transport.ssh import SshConnector, SshOptions
from tests.contract.sshd import Sshd, free_port, keygen


def host_for(sshd: Sshd, **over: object) -> Host:
    fields: dict[str, object] = {
        "name": "box", "address": "127.0.0.1", "port": sshd.port, "user": "root",
        "key_file": str(sshd.client_key), "become": False, "groups": ("all",),
        "vars": {"netops_ssh_config": str(sshd.ssh_config)},
    }
    fields.update(over)
    return Host(**fields)  # type: ignore[arg-type]


def connector(mode: HostKeyMode = HostKeyMode.STRICT, **kw: object) -> SshConnector:
    return SshConnector(SshOptions(host_keys=mode, connect_timeout=3, **kw))  # type: ignore[arg-type]


def test_runs_commands_on_one_reused_connection(sshd: Sshd) -> None:
    t = connector().transport(host_for(sshd))
    first = t.run(Command("echo out; echo err >&2; exit 3"))
    assert (first.rc, first.stdout, first.stderr) == (3, "out\n", "err\n")
    # every command's parent is the same per-connection sshd process: one connection, reused
    parents = {t.run(Command("echo $PPID")).stdout for _ in range(3)}
    assert len(parents) == 1
    t.close()


def test_stdin_put_get_and_large_output(sshd: Sshd, tmp_path: Path) -> None:
    t = connector().transport(host_for(sshd))
    assert t.run(Command("cat"), stdin=b"hello").stdout == "hello"
    target = tmp_path / "f.txt"
    t.put(b"data\n", str(target), mode=0o600)
    assert target.read_bytes() == b"data\n" and oct(target.stat().st_mode & 0o777) == "0o600"
    assert t.get(str(target)) == b"data\n"
    # 4 MB on both streams at once must not deadlock on the channel window (each stream keeps
    # its first and last bytes, 1 MiB in all: the rest is counted as cut)
    big = t.run(Command("head -c 4000000 /dev/zero | tr '\\0' a; head -c 4000000 /dev/zero >&2"))
    assert big.truncated == 2 * (4_000_000 - 2**20)
    assert big.stdout.startswith("a" * 2**18) and big.stdout.endswith("a" * 2**19)
    t.close()


def test_timeout_kills_the_command_on_the_node(sshd: Sshd, tmp_path: Path) -> None:
    t = connector().transport(host_for(sshd))
    marker = tmp_path / "orphan"
    started = time.monotonic()
    with pytest.raises(TimedOut):
        t.run(Command(f"sleep 29.75 & sleep 29.75; touch {marker}"), timeout=1)
    assert time.monotonic() - started < 6
    time.sleep(0.3)
    left = t.run(Command("pgrep -af 'slee[p] 29[.]75' || true")).stdout.strip()
    assert left == "", f"orphaned processes left on the node: {left}"
    assert not marker.exists()
    t.close()


def test_strict_refuses_unknown_host(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "empty_config"
    empty.write_text("")
    host = host_for(sshd, vars={"netops_ssh_config": str(empty)})
    with pytest.raises(HostKeyRejected, match="not in known_hosts"):
        connector().transport(host).run(Command("true"))


def test_strict_refuses_changed_key(sshd: Sshd, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other")
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(other.split()[:2])}\n")
    cfg = tmp_path / "cfg"
    cfg.write_text(f"Host *\n  UserKnownHostsFile {known}\n")
    host = host_for(sshd, vars={"netops_ssh_config": str(cfg)})
    for mode in (HostKeyMode.STRICT, HostKeyMode.ACCEPT_NEW):
        with pytest.raises(HostKeyRejected, match="CHANGED"):
            connector(mode).transport(host).run(Command("true"))


def test_accept_new_records_key_in_netops_file(sshd: Sshd, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    empty = tmp_path / "empty_config"
    empty.write_text("")
    host = host_for(sshd, vars={"netops_ssh_config": str(empty)})
    assert connector(HostKeyMode.ACCEPT_NEW).transport(host).run(Command("true")).ok
    recorded = (tmp_path / "state" / "netops" / "known_hosts").read_text()
    assert recorded.startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    # now known: strict accepts it too
    assert connector().transport(host).run(Command("true")).ok


def test_unreachable_and_auth_failures_are_typed(sshd: Sshd, tmp_path: Path) -> None:
    closed = host_for(sshd, port=free_port())
    with pytest.raises(Unreachable):
        connector(connect_retries=0).transport(closed).run(Command("true"))
    stranger = tmp_path / "stranger"
    keygen(stranger)
    empty = tmp_path / "empty_config"
    empty.write_text(f"Host *\n  UserKnownHostsFile {sshd.known_hosts}\n")
    host = host_for(sshd, key_file=str(stranger), vars={"netops_ssh_config": str(empty)})
    with pytest.raises(AuthFailed):
        connector().transport(host).run(Command("true"))


def test_ssh_config_alias_resolution(sshd: Sshd) -> None:
    """HostName, Port, User and IdentityFile come from ssh_config when the inventory is bare."""
    host = host_for(sshd, address="box", port=None, user=None, key_file=None)
    t = connector().transport(host)
    assert t.run(Command("whoami")).stdout.strip() == "root"
    t.close()
