"""netops reads ssh_config as OpenSSH does: the oracle is `ssh -G -F FILE HOST` (what ssh would
use, printed without connecting) on real-world configs with Include files, Host wildcards and
negations, Match blocks and first-match-wins. HOME is the test's directory for both, so that
`~` and relative Includes (read from ~/.ssh) land there."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netops.errors import UserError
from netops.transport.sshconfig import SshConfig, resolve

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client not found")

BASTION = """\
# a jump-host setup: one bastion, every production name through it
Host bastion
  HostName 203.0.113.10
  User jump
  IdentityFile ~/.ssh/bastion_ed25519
  IdentitiesOnly yes

Host *.prod !bastion !db-*.prod
  ProxyJump bastion
  User ops

Host web-* db-?
  User deploy
  Port 2222

Host db-*.prod
  ProxyJump ops@bastion:2200,bastion2
  HostName %h.internal

Host legacy
  ProxyCommand ssh -W %h:%p bastion
  ProxyJump ignored-after-proxycommand

Host *
  ServerAliveInterval 30
  ServerAliveCountMax 4
  IdentityFile ~/.ssh/id_ed25519
  User fallback
"""

# ~/.ssh/config of an operator with several clusters, kept in ~/.ssh/config.d/
INCLUDES = {
    ".ssh/config": """\
Include config.d/*.conf
Host k8s-*
  Include clusters/k8s.extra
Host *
  User operator
""",
    ".ssh/config.d/10-prod.conf": """\
Host k8s-prod-*
  HostName %h.prod.example.com
  Port 2201
# a Host line here must not leak into the including file
Host nothing-matches-this
""",
    ".ssh/config.d/20-lab.conf": """\
Host k8s-lab-1
  HostName 198.51.100.21
Host k8s-lab-*
  User labber
  Port 2202
""",
    ".ssh/config.d/ignored.txt": "Host *\n  Port 9\n",
    ".ssh/clusters/k8s.extra": "IdentityFile ~/.ssh/k8s_ed25519\nServerAliveInterval 7\n",
}

MATCHES = """\
Host node?
  HostName 10.20.0.%h
Host node1
  HostName first-wins-already-set

Match host 10.20.0.node1
  Port 2301
Match originalhost node2 host !10.20.0.node2
  Port 9999
Match originalhost node2
  Port 2302
Match host *.internal,!*.skip.internal
  User internal
Match !host *.internal user root
  ServerAliveInterval 11
Match exec "test %n = node3"
  Port 2303
Match all
  User = "everyone"
  Port=2200
"""

CONFIGS = {"bastion": BASTION, "matches": MATCHES}
CASES = [
    ("bastion", "bastion"), ("bastion", "web.prod"), ("bastion", "web-1"), ("bastion", "db-1"),
    ("bastion", "db-7.prod"), ("bastion", "legacy"), ("bastion", "other"),
    ("includes", "k8s-prod-3"), ("includes", "k8s-lab-1"), ("includes", "k8s-lab-2"),
    ("includes", "plain"),
    ("matches", "node1"), ("matches", "node2"), ("matches", "node3"), ("matches", "x.internal"),
    ("matches", "y.skip.internal"), ("matches", "other"),
]
DEFAULT_KEYS = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
                "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa")


def _write(home: Path, config: str) -> Path:
    if config == "includes":
        for rel, text in INCLUDES.items():
            (home / rel).parent.mkdir(parents=True, exist_ok=True)
            (home / rel).write_text(text)
        return home / ".ssh" / "config"
    path = home / f"{config}.conf"
    path.write_text(CONFIGS[config])
    return path


def ssh_g(path: Path, host: str, home: Path) -> dict[str, list[str]]:
    done = subprocess.run(["ssh", "-G", "-F", str(path), host], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "HOME": str(home)},
                          stdin=subprocess.DEVNULL, check=True)
    out: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value)
    return out


@pytest.mark.parametrize(("config", "host"), CASES)
def test_resolution_equals_ssh_G(config: str, host: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = _write(tmp_path, config)
    want = ssh_g(path, host, tmp_path)
    conf = SshConfig((path,)).lookup(host)
    got = resolve(SshConfig((path,)), host, host, None, None, None)
    assert got.address == want["hostname"][0]
    assert got.user == want["user"][0]
    assert got.port == int(want["port"][0])
    assert list(conf.get("identityfile") or DEFAULT_KEYS) == want["identityfile"]
    assert (conf.get("identitiesonly") or "no") == want.get("identitiesonly", ["no"])[0]
    assert got.proxy_jump == tuple(want.get("proxyjump", [""])[0].split(",") if
                                   "proxyjump" in want else ())
    assert conf.get("proxycommand") == (want["proxycommand"][0] if "proxycommand" in want
                                        else None)
    for key in ("serveraliveinterval", "serveralivecountmax"):
        assert conf.get(key, want[key][0]) == want[key][0]


def test_relative_include_of_a_system_file_is_read_from_etc_ssh(tmp_path: Path) -> None:
    path = tmp_path / "ssh_config"
    path.write_text("Include no-such-netops-test-*.conf\nHost *\n  Port 2000\n")
    assert SshConfig((path,), system=(path,)).lookup("x")["port"] == "2000"
    path.write_text("Include ~/x.conf\n")
    with pytest.raises(UserError, match=r"cannot Include ~/x\.conf"):
        SshConfig((path,), system=(path,))


def test_an_include_loop_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.conf"
    path.write_text(f"Include {path}\n")
    with pytest.raises(UserError, match="Include nested deeper"):
        SshConfig((path,))


def test_match_canonical_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.conf"
    path.write_text("Host *\n  Port 1\nMatch canonical host x\n  Port 2\n")
    with pytest.raises(UserError, match=f"{path}:3: `Match canonical` is not supported"):
        SshConfig((path,))


def test_a_fleet_config_is_indexed(tmp_path: Path) -> None:
    """One Host block per node: a look-up skips the blocks of other names, with the same
    answer as reading every line."""
    blocks = "".join(f"Host n{i}\n  HostName 10.1.{i // 250}.{i % 250}\n  User u{i}\n"
                     for i in range(3000))
    path = tmp_path / "fleet.conf"
    path.write_text("Host n7\n  Port 7\n" + blocks + "Host n1*\n  Port 1000\nHost *\n  User x\n")
    conf = SshConfig((path,))
    assert dict(conf.lookup("n7")) == {"port": "7", "hostname": "10.1.0.7", "user": "u7"}
    assert dict(conf.lookup("n1234")) == {"hostname": "10.1.4.234", "user": "u1234",
                                          "port": "1000"}
    assert dict(conf.lookup("zz")) == {"user": "x"}
    assert getpass.getuser()  # (the default user when none is set)


def test_inventory_ssh_args_over_ssh_config(tmp_path: Path) -> None:
    """ansible_ssh_common_args/extra_args: as on ssh's command line, over ssh_config; the
    inventory's own ansible_port/user over both."""
    from netops.transport.sshconfig import ssh_args

    path = tmp_path / "c.conf"
    path.write_text("Host n1\n  Port 2000\n  ProxyCommand nc %h %p\n  IdentityFile /k/conf\n"
                    "  User conf\n")
    args = ssh_args("-o Port=2100 -oUser=args -J me@jump:2222 -i /k/args "
                    "-o 'ServerAliveInterval 4' -o ControlPersist=60s -p 2200", "n1")
    assert args == {"port": "2100", "user": "args", "proxyjump": "me@jump:2222",
                    "identityfile": ["/k/args"], "serveraliveinterval": "4"}
    got = resolve(SshConfig((path,)), "n1", "n1", None, None, None, args)
    assert (got.port, got.user, got.proxy_jump, got.proxy_command) == (
        2100, "args", ("me@jump:2222",), None)
    assert got.key_files == ("/k/args", "/k/conf") and got.server_alive_interval == 4
    mine = resolve(SshConfig((path,)), "n1", "n1", 22, "inv", None, args)
    assert (mine.port, mine.user) == (22, "inv")
    for bad, named in (("-o ForwardX11=yes", "-o ForwardX11"), ("-A", "'-A'"),
                       ("-o StrictHostKeyChecking=no", "StrictHostKeyChecking"),
                       ("-o ProxyCommand='ssh -W %h:%p {{ bastion }}'", "Jinja template")):
        with pytest.raises(UserError, match=f"host 'n1'.*{re.escape(named)}"):
            ssh_args(bad, "n1")
