"""ssh_config and known_hosts indexes: the same answers as paramiko's full scans."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import paramiko
import pytest

from netops.transport.base import HostKeyMode
from netops.transport.known_hosts import KnownHosts
from netops.transport.sshconfig import SshConfig, resolve, split_hop

CONFIG = """\
User everyone
Host node1 node2
  HostName 10.0.0.1
  Port 2201
Host node2
  HostName ignored-first-wins
  IdentityFile ~/k2
Host node*
  User ops
  IdentityFile ~/kstar
Host !node3 *.lab
  ProxyJump bastion
Match host node3
  Port 2203
Host bastion
  HostName 192.0.2.9
  ProxyJump none
Host *
  ConnectTimeout 7
"""


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client not found")
@pytest.mark.parametrize("name", ["node1", "node2", "node3", "x.lab", "node3.lab", "bastion",
                                  "other", "node10"])
def test_indexed_lookup_equals_ssh_G(tmp_path: Path, name: str) -> None:
    """The index (literal Host names) gives what OpenSSH's full scan gives (more configs in
    tests/contract/test_ssh_config_openssh.py)."""
    path = tmp_path / "config"
    path.write_text(CONFIG)
    done = subprocess.run(["ssh", "-G", "-F", str(path), name], capture_output=True, text=True,
                          timeout=30, check=True, stdin=subprocess.DEVNULL)
    want: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        want.setdefault(key, []).append(value)
    conf = SshConfig((path,)).lookup(name)
    assert conf.get("hostname", name) == want["hostname"][0]
    assert conf["user"] == want["user"][0] and conf.get("port", "22") == want["port"][0]
    assert conf.get("proxyjump", "none") == want.get("proxyjump", ["none"])[0]
    if "identityfile" in conf:
        assert conf["identityfile"] == want["identityfile"]


def test_files_are_read_in_order_and_missing_ones_skipped(tmp_path: Path) -> None:
    user, system = tmp_path / "user", tmp_path / "system"
    user.write_text("Host a\n  Port 1\n")
    system.write_text("Host a\n  Port 2\n  User sys\n")
    conf = SshConfig((user, tmp_path / "missing", system)).lookup("a")
    assert (conf["port"], conf["user"]) == ("1", "sys")


def test_resolve_inventory_over_config(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(CONFIG)
    cfg = SshConfig((path,))
    r = resolve(cfg, "node1", "node1", None, None, "/inv/key")
    assert (r.address, r.port, r.user) == ("10.0.0.1", 2201, "everyone")  # first wins
    assert r.key_files[0] == "/inv/key" and r.key_files[1].endswith("/kstar")
    assert r.proxy_jump == ()
    assert resolve(cfg, "x.lab", "x.lab", None, None, None).proxy_jump == ("bastion",)
    r = resolve(cfg, "node1", "192.0.2.1", 22, "root", None)  # ansible_host/port/user win
    assert (r.address, r.port, r.user) == ("192.0.2.1", 22, "root")
    assert resolve(cfg, "bastion", "bastion", None, None, None).proxy_jump == ()
    assert split_hop("me@[::1]:2222") == ("me", "::1", 2222)
    assert split_hop("jump:22") == (None, "jump", 22) and split_hop("j") == (None, "j", None)


def test_known_hosts_index_plain_hashed_and_ports(tmp_path: Path) -> None:
    a = "AAAAC3NzaC1lZDI1NTE5AAAAIEqANpZmozVX69UL3ImRZ1YOQRlsx2jYxcZ7XW793eXK"
    b = "AAAAC3NzaC1lZDI1NTE5AAAAIF2f4nEv9MCf5/gPV6MF6VwkwO2aZIbbYFSfKBJoA+LH"
    hashed = paramiko.HostKeys.hash_host("[10.0.0.3]:2222")
    known = tmp_path / "known_hosts"
    known.write_text(f"# comment\nn1,10.0.0.1 ssh-ed25519 {a}\n{hashed} ssh-ed25519 {b}\n"
                     "garbage line\n@cert-authority *.lab ssh-ed25519 {a}\n"
                     f"n1 ssh-ed25519 {b}\n")
    store = KnownHosts(HostKeyMode.STRICT)
    found = store.entries_for(("10.0.0.1", "n1"), (known,))
    assert found["ssh-ed25519"].get_base64() == a  # first entry wins, as in paramiko
    found = store.entries_for(("[10.0.0.3]:2222",), (known,))
    assert found["ssh-ed25519"].get_base64() == b
    assert store.entries_for(("10.0.0.3",), (known,)) == {}


def test_lines_without_shell_syntax_split_as_shlex_would() -> None:
    # `_split` skips shlex for lines it would split at blanks only; both must agree
    import shlex

    from netops.transport.sshconfig import _split

    lines = ["Host node1 node2", "  HostName 10.0.0.1", "Port=2201", "IdentityFile ~/.ssh/k",
             "ProxyCommand ssh -W %h:%p bastion", "User\tops", 'HostName "quoted name"',
             "IdentityFile 'with space'", "User ops # a comment", "LocalCommand a\\ b",
             "Host *.lab !node3", "  KexAlgorithms curve25519-sha256,ecdh-sha2-nistp256  "]
    for line in lines:
        key, args = _split(line, "test") or ("", [])
        rest = line.strip()[len(line.strip().split(None, 1)[0].split("=")[0]):].lstrip(" \t=")
        assert args == shlex.split(rest, comments=True), line
        assert key == line.strip().split(None, 1)[0].split("=")[0].lower()
