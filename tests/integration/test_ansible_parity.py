"""An operator's Ansible inventory on real nodes (issue 15 items 2 and 4): a non-root login
user with `ansible_become` (real `sudo`, NOPASSWD) for every command and the node lock,
`ansible_become_user`, `ansible_ssh_common_args` with ProxyJump, refused options and become
methods, and the kubeconfig context of controller steps."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from netops.lab import Lab
from tests.integration.helpers import Cli, lab_for

pytestmark = pytest.mark.lab
NAMES = ["chick1", "chick2"]

USERS = r"""
set -e
for u in ops app; do
  id "$u" >/dev/null 2>&1 || useradd -M -d "/var/lib/$u" -s /bin/sh "$u"
  usermod -p '*' "$u"          # not locked: sshd (UsePAM no) refuses locked accounts
done
mkdir -p /var/lib/ops/.ssh /var/lib/app
cp /root/.ssh/authorized_keys /var/lib/ops/.ssh/authorized_keys
chown -R ops:ops /var/lib/ops; chown app:app /var/lib/app
chmod 755 /var/lib/ops; chmod 700 /var/lib/ops/.ssh; chmod 600 /var/lib/ops/.ssh/authorized_keys
echo 'ops ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ops; chmod 440 /etc/sudoers.d/ops
"""

RUNBOOK = """\
name: become-proof
description: proves that every command runs as the become user
steps:
  - id: who
    check: id -un
    expect: {stdout: root}
    fail: true
  - id: write
    shell: echo proof > /etc/netops-become-proof
    unless: test -e /etc/netops-become-proof
"""

KUBE_RUNBOOK = """\
name: kube-proof
description: lists the nodes through the selected kubeconfig context
steps:
  - kubectl: get nodes -o name
    mutates: false
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if shutil.which("sudo") is None:
        pytest.skip("sudo is not installed (scripts/setup.sh installs it)")
    for lab in lab_for(tmp_path_factory.mktemp("parity"), NAMES, 201):
        for name in NAMES:
            lab.node_exec(name, USERS)
        yield lab


def inventory(lab: Lab, tmp: Path, **extra: Any) -> Path:
    """The lab's inventory with `extra` variables on `all`, and per-host ones
    (`host_chick2={...}`)."""
    doc = yaml.safe_load(lab.inventory_path.read_text())
    doc["all"]["vars"].update({k: v for k, v in extra.items() if not k.startswith("host_")})
    for key, value in extra.items():
        if key.startswith("host_"):
            for group in doc["all"]["children"].values():
                hosts = (group or {}).get("hosts") or {}
                if key[5:] in hosts:
                    hosts[key[5:]].update(value)
    path = tmp / f"inventory-{len(list(tmp.glob('inventory-*')))}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def stdout_of(cli: Cli, inv: Path, command: str, *args: str) -> dict[str, str]:
    r = cli("-i", str(inv), *args, "exec", "--nodes", "all", "--json", "--", command)
    assert r.rc == 0, r.stderr + r.stdout
    return {h: v["steps"][0]["stdout"].strip() for h, v in r.json["hosts"].items()}


def test_become_from_the_inventory_applies_to_every_command_and_the_lock(
        lab: Lab, cli: Cli, tmp_path: Path) -> None:
    plain = inventory(lab, tmp_path, ansible_user="ops")
    assert stdout_of(cli, plain, "id -un") == dict.fromkeys(NAMES, "ops")
    become = inventory(lab, tmp_path, ansible_user="ops", ansible_become=True)
    assert stdout_of(cli, become, "id -un") == dict.fromkeys(NAMES, "root")
    books = tmp_path / "books"
    books.mkdir()
    (books / "become-proof.yaml").write_text(RUNBOOK)
    r = cli("-i", str(become), "--runbooks", str(books), "run", "become-proof", "--nodes",
            "all", "--json")
    assert r.rc == 0, r.stderr + r.stdout
    assert r.statuses() == dict.fromkeys(NAMES, "changed")
    for name in NAMES:
        # the lock was taken and released through sudo (the guard file is root's), and the
        # login user really was ops: sudo logged it
        done = lab.node_exec(name, "stat -c %U /var/lib/netops/.guard /etc/netops-become-proof;"
                             " test ! -e /var/lib/netops/lock && echo released")
        assert done.stdout.split() == ["root", "root", "released"]
    # without become, the same runbook fails on its first check: ops is not root
    r = cli("-i", str(plain), "--runbooks", str(books), "run", "become-proof", "--nodes",
            "chick1", "--json")
    assert r.rc == 1 and r.statuses() == {"chick1": "failed"}


def test_become_user_and_refused_become_method(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    other = inventory(lab, tmp_path, ansible_user="ops", ansible_become="yes",
                      ansible_become_user="app")
    assert stdout_of(cli, other, "id -un") == dict.fromkeys(NAMES, "app")
    su = inventory(lab, tmp_path, ansible_user="ops", ansible_become=True,
                   host_chick2={"ansible_become_method": "su"})
    r = cli("-i", str(su), "exec", "--nodes", "all", "--", "true")
    assert r.rc == 2
    assert "host 'chick2': ansible_become_method 'su' is not supported" in r.stderr


def test_ssh_common_args_proxy_jump_is_honoured(lab: Lab, cli: Cli, tmp_path: Path) -> None:
    jump = lab.address("chick1")
    inv = inventory(lab, tmp_path, host_chick2={
        "ansible_ssh_common_args": "-o ControlMaster=auto -o ControlPersist=60s "
                                   "-o ProxyJump=chick1",
        "ansible_ssh_extra_args": "-o ServerAliveInterval=5"})
    seen = stdout_of(cli, inv, "echo $SSH_CONNECTION")
    # chick2 saw the connection come from chick1's address: it went through the jump host
    assert seen["chick2"].split()[0] == jump
    assert seen["chick1"].split()[0] != jump
    bad = inventory(lab, tmp_path, host_chick2={"ansible_ssh_common_args": "-o ForwardX11=yes"})
    r = cli("-i", str(bad), "exec", "--nodes", "all", "--", "true")
    assert r.rc == 2
    assert "host 'chick2'" in r.stderr and "ssh option -o ForwardX11 is not supported" in r.stderr
    strict = inventory(lab, tmp_path, host_chick1={
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no"})
    r = cli("-i", str(strict), "exec", "--nodes", "all", "--", "true")
    assert r.rc == 2 and "--host-keys" in r.stderr


def test_kube_context_selects_the_cluster_of_controller_steps(lab: Lab, cli: Cli,
                                                              tmp_path: Path) -> None:
    config = yaml.safe_load((lab.directory / "kubeconfig").read_text())
    config["clusters"].append({"name": "elsewhere",
                               "cluster": {"server": "http://127.0.0.1:9"}})
    config["contexts"].append({"name": "elsewhere",
                               "context": {"cluster": "elsewhere", "user": "lab-admin"}})
    config["current-context"] = "elsewhere"  # the operator's current context: wrong cluster
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    books = tmp_path / "books"
    books.mkdir()
    (books / "kube-proof.yaml").write_text(KUBE_RUNBOOK)

    def run(inv: Path, *extra: str) -> Any:
        return cli("-i", str(inv), "--runbooks", str(books), *extra, "run", "kube-proof",
                   "--nodes", "chick1", "--json")

    current = inventory(lab, tmp_path, netops_kubeconfig=str(kubeconfig))
    assert run(current).rc == 1  # the current context's cluster does not answer
    assert run(current, "--kube-context", "netops-lab").statuses() == {"chick1": "ok"}
    chosen = inventory(lab, tmp_path, netops_kubeconfig=str(kubeconfig),
                       netops_kube_context="netops-lab")
    r = run(chosen)
    assert r.statuses() == {"chick1": "ok"}
    assert "node/chick1" in r.json["hosts"]["chick1"]["steps"][0]["stdout"]
    assert run(chosen, "--kube-context", "elsewhere").rc == 1  # the option wins
