"""netops reads every fixture inventory exactly as ansible-core does.

The oracle is the real `ansible-inventory --list` (and `ansible --list-hosts` for `--limit`
patterns); the tests skip, saying so, only when ansible-core is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netops.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "inventories"
INVENTORIES = {
    "root": ROOT / "inventory.yaml",
    "kubespray": FIXTURES / "kubespray" / "hosts.yaml",
    "ini": FIXTURES / "ini" / "hosts.ini",
    "nested": FIXTURES / "nested" / "inventory.yaml",
    "ranges": FIXTURES / "ranges" / "inventory.yml",
    "ini-no-extension": FIXTURES / "detect" / "hosts",
    "yaml-no-extension": FIXTURES / "detect" / "inventory",
    "json": FIXTURES / "json" / "inventory.json",
}

needs_ansible = pytest.mark.skipif(
    not (shutil.which("ansible-inventory") and shutil.which("ansible")),
    reason="ansible-core is not installed (pip install -e .[test]); it is the oracle here")


def _ansible(args: list[str], cwd: Path) -> str:
    # cwd is a scratch dir so no ansible.cfg or group_vars/ of the checkout can leak in
    env = {**os.environ, "ANSIBLE_DEPRECATION_WARNINGS": "False", "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ansible_list(path: Path | list[Path], cwd: Path) -> dict[str, Any]:
    sources = path if isinstance(path, list) else [path]
    args = [a for p in sources for a in ("-i", str(p))]
    return dict(json.loads(_ansible(["ansible-inventory", *args, "--list"], cwd)))


def ansible_limit(path: Path, pattern: str, cwd: Path) -> set[str]:
    out = _ansible(["ansible", "all", "-i", str(path), "--limit", pattern, "--list-hosts"], cwd)
    return {line.strip() for line in out.splitlines()[1:] if line.strip()}


@needs_ansible
@pytest.mark.parametrize("name", list(INVENTORIES))
def test_list_equals_ansible_inventory(name: str, tmp_path: Path) -> None:
    path = INVENTORIES[name]
    assert load_inventory(path).to_ansible_list() == ansible_list(path, tmp_path)


@needs_ansible
@pytest.mark.parametrize("name", ["root", "kubespray"])
def test_cli_list_equals_ansible_inventory(name: str, tmp_path: Path) -> None:
    path = INVENTORIES[name]
    done = subprocess.run([sys.executable, "-m", "netops", "-i", str(path), "inventory", "--list"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ansible_list(path, tmp_path)


@needs_ansible
@pytest.mark.parametrize("pattern", ["chick2,chick5", "workers:!chick7", "etcd:&control_plane"])
def test_cli_list_with_nodes_equals_ansible_inventory_limit(pattern: str, tmp_path: Path) -> None:
    path = INVENTORIES["root"]
    done = subprocess.run([sys.executable, "-m", "netops", "-i", str(path), "inventory",
                           "--nodes", pattern, "--list"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = json.loads(_ansible(["ansible-inventory", "-i", str(path), "--limit", pattern,
                                    "--list"], tmp_path))
    assert json.loads(done.stdout) == expected


LIMITS = [
    ("root", "workers"),
    ("root", "chick1*"),
    ("root", "workers:!chick1?"),
    ("root", "all:&etcd"),
    ("root", "chick4,etcd,chick4"),
    ("root", "!workers"),
    ("root", "~chick(1|2)$"),
    ("root", "workers[0:2]"),
    ("kubespray", "k8s_cluster:!kube_control_plane"),
    ("kubespray", "kube_node:&etcd"),
    ("kubespray", "etcd,!node1"),
    ("ranges", "10.0.0.*,edge?"),
    ("nested", "monitoring:&storage"),
    ("ini", "k8s:!cp0*"),
]


@needs_ansible
@pytest.mark.parametrize(("name", "pattern"), LIMITS)
def test_nodes_select_what_ansible_limit_selects(name: str, pattern: str,
                                                 tmp_path: Path) -> None:
    path = INVENTORIES[name]
    ours = {h.name for h in load_inventory(path).select(pattern)}
    assert ours == ansible_limit(path, pattern, tmp_path)


def test_cli_unknown_node_exits_2_with_close_matches(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "netops", "-i", str(INVENTORIES["root"]),
                           "inventory", "--nodes", "chick19"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown host or group 'chick19'" in done.stderr
    assert "did you mean" in done.stderr and "chick1" in done.stderr


def test_cli_missing_inventory_exits_2(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "netops", "inventory"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "NETOPS_INVENTORY"})
    assert done.returncode == 2
    assert "inventory.yaml does not exist" in done.stderr
    assert "-i/--inventory" in done.stderr


# -- directory inventories and several -i (issue 15) ----------------------------------------
SOURCES = {
    "mycluster-dir": [FIXTURES / "mycluster"],
    "kubespray-dir": [FIXTURES / "kubespray"],
    "two-files": [FIXTURES / "kubespray" / "hosts.yaml", FIXTURES / "ini" / "hosts.ini"],
    "dir-and-file": [FIXTURES / "mycluster", FIXTURES / "nested" / "inventory.yaml"],
    "same-dir-twice": [FIXTURES / "nested" / "inventory.yaml", FIXTURES / "mycluster",
                       FIXTURES / "nested" / "inventory.yaml"],
}


@needs_ansible
@pytest.mark.parametrize("name", list(SOURCES))
def test_sources_equal_ansible_inventory(name: str, tmp_path: Path) -> None:
    sources = SOURCES[name]
    assert load_inventory(sources).to_ansible_list() == ansible_list(sources, tmp_path)


@needs_ansible
def test_cli_several_inventories_equal_ansible_inventory(tmp_path: Path) -> None:
    sources = SOURCES["dir-and-file"]
    args = [a for p in sources for a in ("-i", str(p))]
    done = subprocess.run([sys.executable, "-m", "netops", *args, "inventory", "--list"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ansible_list(sources, tmp_path)


def test_directory_inventory_connection_settings() -> None:
    inv = load_inventory(FIXTURES / "mycluster")
    node2 = inv.host("node2")
    assert (node2.address, node2.port, node2.user, node2.become) == ("10.3.0.2", 2222, "kube",
                                                                    True)
    assert inv.host("edge1").user == "kube"  # kube_node is in k8s_cluster (extra/edge.yaml)
    assert inv.sources == (FIXTURES / "mycluster",)


def test_unknown_netops_variable_is_a_one_line_warning(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("all:\n  vars:\n    netops_kube_contxt: prod\n  hosts:\n    n1:\n"
                    "      netops_sshconfig: x\n      netops_kubeconfig: /k\n")
    warnings = load_inventory(path).warnings
    assert warnings == (
        "group 'all': unknown variable 'netops_kube_contxt', ignored (did you mean "
        "'netops_kube_context'?)",
        "host 'n1': unknown variable 'netops_sshconfig', ignored (did you mean "
        "'netops_ssh_config'?)")
    done = subprocess.run([sys.executable, "-m", "netops", "-i", str(path), "inventory"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "warning: group 'all': unknown variable 'netops_kube_contxt'" in done.stderr


def test_become_method_other_than_sudo_is_refused_naming_host_and_variable(
        tmp_path: Path) -> None:
    from netops.errors import LoadError

    path = tmp_path / "inventory.ini"
    path.write_text("n1 ansible_become=yes ansible_become_method=su\n")
    with pytest.raises(LoadError, match="host 'n1': ansible_become_method 'su' is not "
                                        "supported"):
        load_inventory(path)
    path.write_text("n1 ansible_become=yes ansible_become_user=postgres\n")
    host = load_inventory(path).host("n1")
    assert (host.become, host.become_user) == (True, "postgres")
