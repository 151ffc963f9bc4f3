"""The lab itself: isolation of nodes from the host and each other, stand-in output formats
(RUNBOOKS.md section 3), reboot semantics, and a clean teardown."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from netops.lab import Lab
from tests.conftest import MakeLab

pytestmark = pytest.mark.lab


def ssh(lab: Lab, node: str, command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Real OpenSSH with the lab's ssh_config (strict host keys against its known_hosts)."""
    return subprocess.run(["ssh", "-F", str(lab.ssh_config_path), "-o", "BatchMode=yes", node,
                           command], capture_output=True, text=True, timeout=timeout)


def sh(lab: Lab, node: str, command: str) -> subprocess.CompletedProcess[str]:
    return lab.node_exec(node, command, check=False)


def host_sysctl(key: str) -> str:
    return Path("/proc/sys", *key.split(".")).read_text().strip()


def test_nodes_answer_over_openssh_with_their_own_host_keys(lab: Lab) -> None:
    for name in lab.names:
        done = ssh(lab, name, "hostname; cat /etc/hostname")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [name, name]
    keys = {line.split()[-1] for line in lab.known_hosts_path.read_text().splitlines()}
    assert len(keys) == len(lab.names), "every node has its own host key"
    # strict: without the lab's known_hosts the key is not trusted
    refused = subprocess.run(["ssh", "-F", str(lab.ssh_config_path), "-o", "BatchMode=yes",
                              "-o", "UserKnownHostsFile=/dev/null", "chick1", "true"],
                             capture_output=True, text=True, timeout=20)
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr


def test_client_files_live_in_the_lab_directory(lab: Lab) -> None:
    inv = yaml.safe_load(lab.inventory_path.read_text())["all"]
    assert inv["vars"]["ansible_user"] == "root"
    assert inv["vars"]["ansible_ssh_private_key_file"] == str(lab.key_path)
    assert inv["vars"]["netops_ssh_config"] == str(lab.ssh_config_path)
    groups = inv["children"]
    assert list(groups["control_plane"]["hosts"]) == ["chick1", "chick2", "chick3"]
    assert list(groups["etcd"]["hosts"]) == ["chick1", "chick2", "chick3"]
    assert groups["workers"] == {}
    assert groups["control_plane"]["hosts"]["chick2"] == {"ansible_host": lab.address("chick2")}
    for path in (lab.ssh_config_path, lab.known_hosts_path, lab.key_path):
        assert path.parent == lab.directory
    user_known = Path.home() / ".ssh" / "known_hosts"
    if user_known.exists():
        assert lab.address("chick1") not in user_known.read_text()


def test_sysctls_are_per_node_and_host_wide_keys_are_out_of_reach(lab: Lab) -> None:
    host_forward = host_sysctl("net.ipv4.ip_forward")
    host_swappiness = host_sysctl("vm.swappiness")
    assert sh(lab, "chick1", "sysctl -n net.ipv4.ip_forward").stdout.strip() == "1"
    lab.node_exec("chick1", "sysctl -w net.ipv4.ip_forward=0")
    try:
        assert sh(lab, "chick1", "sysctl -n net.ipv4.ip_forward").stdout.strip() == "0"
        assert sh(lab, "chick2", "sysctl -n net.ipv4.ip_forward").stdout.strip() == "1"
        assert host_sysctl("net.ipv4.ip_forward") == host_forward
        # kernel.*, vm.*, fs.* are the host's: read-only in a node, even for sysctl --system
        denied = sh(lab, "chick1", "sysctl -w vm.swappiness=7")
        assert denied.returncode != 0 and "denied" in denied.stderr
        sh(lab, "chick1", "sysctl --system")
        assert host_sysctl("vm.swappiness") == host_swappiness
        assert host_sysctl("net.ipv4.ip_forward") == host_forward
    finally:
        lab.node_exec("chick1", "sysctl -w net.ipv4.ip_forward=1")


def test_etc_var_and_root_are_the_nodes_own(lab: Lab) -> None:
    marker = f"netops-lab-test-{time.time_ns()}"
    lab.node_exec("chick1", f"echo hi > /etc/{marker} && echo hi > /var/tmp/{marker}")
    assert sh(lab, "chick1", f"cat /etc/{marker}").stdout == "hi\n"
    assert not Path(f"/etc/{marker}").exists() and not Path(f"/var/tmp/{marker}").exists()
    assert sh(lab, "chick2", f"test -e /etc/{marker}").returncode == 1
    assert sh(lab, "chick1", "ls -A /root").stdout.split() == [".ssh"]
    assert ssh(lab, "chick1", "test -e ~/.bashrc || echo clean").stdout == "clean\n"
    assert sh(lab, "chick1", "findmnt -n -o FSTYPE /run").stdout.strip() == "tmpfs"


def test_systemctl_standin_matches_systemd(lab: Lab) -> None:
    unknown = sh(lab, "chick2", "systemctl is-active nosuch")
    # LSB 4, "status unknown", when no unit file exists (3 is for a unit that is not running;
    # tests/fixtures/real/systemctl/is-active.c.txt)
    assert (unknown.stdout, unknown.returncode) == ("inactive\n", 4)
    assert sh(lab, "chick2", "systemctl is-active docker kubelet").stdout == "active\nactive\n"
    enabled = sh(lab, "chick2", "systemctl is-enabled nosuch")
    assert (enabled.stdout, enabled.returncode) == ("", 1)
    assert enabled.stderr == \
        "Failed to get unit file state for nosuch.service: No such file or directory\n"
    masked = sh(lab, "chick2", "systemctl mask kubelet")
    assert masked.returncode == 0
    assert masked.stderr == "Created symlink /etc/systemd/system/kubelet.service → /dev/null.\n"
    assert sh(lab, "chick2", "readlink /etc/systemd/system/kubelet.service").stdout == \
        "/dev/null\n"
    state = sh(lab, "chick2", "systemctl is-enabled kubelet")
    assert (state.stdout, state.returncode) == ("masked\n", 1)
    start = sh(lab, "chick2", "systemctl start kubelet")
    assert start.returncode == 1 and "Unit kubelet.service is masked." in start.stderr
    lab.node_exec("chick2", "systemctl unmask kubelet")
    assert sh(lab, "chick2", "systemctl is-enabled kubelet").stdout == "enabled\n"
    quiet = sh(lab, "chick2", "systemctl stop kubelet; systemctl is-active --quiet kubelet")
    assert (quiet.stdout, quiet.returncode) == ("", 3)
    lab.node_exec("chick2", "systemctl start kubelet")


def test_docker_crictl_and_modprobe_standins(lab: Lab) -> None:
    # The lab's kubelet started calico-node (a docker record): start from an empty docker.
    lab.node_path("chick3", "/var/lib").joinpath("docker-standin").mkdir(exist_ok=True)
    lab.node_path("chick3", "/var/lib/docker-standin/state.json").write_text("{}")
    ps = ssh(lab, "chick3", "docker ps -q")
    assert (ps.stdout, ps.returncode) == ("", 0)
    prune = sh(lab, "chick3", "docker system prune -f")
    assert (prune.stdout, prune.returncode) == ("Total reclaimed space: 0B\n", 0)
    now = time.time()
    calico, pause = "a" * 64, "b" * 64
    state = {"containers": [
        {"id": calico, "name": "k8s_calico-node_calico-node-x_kube-system_u1_0",
         "image": "calico/node:v3.26.1", "state": "exited", "exit_code": 137,
         "finished": now - 2 * 3600, "size": 1_711_000_000,
         "labels": {"io.kubernetes.container.name": "calico-node"}},
        {"id": pause, "name": "k8s_POD_coredns-1_kube-system_u2_0", "image": "pause:3.9",
         "state": "running", "started": now - 3 * 86400, "labels": {}},
    ], "networks": [{"name": "stale-net"}]}
    lab.node_path("chick3", "/var/lib").joinpath("docker-standin").mkdir(exist_ok=True)
    lab.node_path("chick3", "/var/lib/docker-standin/state.json").write_text(json.dumps(state))
    assert sh(lab, "chick3", "docker ps -q").stdout == pause[:12] + "\n"
    assert sh(lab, "chick3", "docker ps -aq --no-trunc").stdout == f"{pause}\n{calico}\n"
    fmt = sh(lab, "chick3", "docker ps -a --filter label=io.kubernetes.container.name="
             "calico-node --format '{{.ID}} {{.Status}}'")
    assert fmt.stdout == f"{calico[:12]} Exited (137) 2 hours ago\n"
    assert sh(lab, "chick3", "docker ps --format '{{.Status}}'").stdout == "Up 3 days\n"
    assert sh(lab, "chick3", "docker system prune -f").stdout == (
        f"Deleted Containers:\n{calico}\n\nDeleted Networks:\nstale-net\n\n"
        "Total reclaimed space: 1.711GB\n")
    lab.node_exec("chick3", "systemctl stop docker")
    down = sh(lab, "chick3", "docker ps")
    assert down.returncode == 1 and "Is the docker daemon running?" in down.stderr
    lab.node_exec("chick3", "systemctl start docker")

    pods = {"pods": [{"id": "c" * 64, "name": "web", "namespace": "default", "uid": "u",
                      "state": "SANDBOX_NOTREADY", "created": now},
                     {"id": "d" * 64, "name": "db", "namespace": "default", "uid": "v",
                      "state": "SANDBOX_READY", "created": now}], "containers": []}
    lab.node_path("chick3", "/var/lib").joinpath("crictl-standin").mkdir(exist_ok=True)
    lab.node_path("chick3", "/var/lib/crictl-standin/state.json").write_text(json.dumps(pods))
    assert sh(lab, "chick3", "crictl pods -q --state notready").stdout == "c" * 64 + "\n"
    assert sh(lab, "chick3", "crictl rmp " + "c" * 64).stdout == f"Removed sandbox {'c' * 64}\n"
    assert sh(lab, "chick3", "crictl pods -q").stdout == "d" * 64 + "\n"
    assert sh(lab, "chick3", "crictl pods").stdout.startswith("POD ID")

    assert sh(lab, "chick3", "modprobe br_netfilter").returncode == 0
    lsmod = sh(lab, "chick3", "lsmod").stdout.splitlines()
    assert lsmod[0] == "Module                  Size  Used by"
    assert any(line.startswith("br_netfilter ") for line in lsmod)
    missing = sh(lab, "chick3", "modprobe nosuch")
    kernel = sh(lab, "chick3", "uname -r").stdout.strip()
    assert missing.returncode == 1
    assert missing.stderr == f"modprobe: FATAL: Module nosuch not found in directory " \
        f"/lib/modules/{kernel}\n"


def _wait_for_ssh(lab: Lab, node: str, old_boot_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = ssh(lab, node, "cat /proc/sys/kernel/random/boot_id", timeout=10)
        if done.returncode == 0 and done.stdout.strip() != old_boot_id:
            return done.stdout.strip()
        time.sleep(0.2)
    raise AssertionError(f"{node} did not come back with a new boot id in {timeout}s")


def test_reboot_drops_the_session_and_keeps_only_persisted_state(make_lab: MakeLab) -> None:
    lab = make_lab(["chick1", "chick2"])
    boot_id = ssh(lab, "chick1", "cat /proc/sys/kernel/random/boot_id").stdout.strip()
    setup = ssh(lab, "chick1", "\n".join([
        "echo net.ipv4.ip_forward=1 > /etc/sysctl.d/99-x.conf",
        "sysctl -q -w net.ipv4.conf.all.rp_filter=2",
        "touch /run/marker",
        "echo br_netfilter > /etc/modules-load.d/k8s.conf",
        "modprobe vxlan",
        "mkdir -p /etc/systemd/system/docker.service.d",
        "printf '[Service]\\nExecStartPost=/sbin/iptables -A FORWARD -s 10.244.0.0/16 -j "
        "ACCEPT\\n' > /etc/systemd/system/docker.service.d/10-ok.conf",
        # no [Service]: systemd ignores it ("Assignment outside of section")
        "printf 'ExecStartPost=/sbin/iptables -A FORWARD -d 10.99.0.0/16 -j ACCEPT\\n' "
        "> /etc/systemd/system/docker.service.d/20-no-section.conf",
        "systemctl mask containerd",
        "iptables -P FORWARD ACCEPT",
    ]))
    assert setup.returncode == 0, setup.stderr
    # A node's uptime starts below 1s (the time namespace offset is in whole seconds).
    uptime = float(ssh(lab, "chick1", "sleep 1.5; cut -d' ' -f1 /proc/uptime").stdout)

    started = time.monotonic()
    dropped = ssh(lab, "chick1", "reboot; echo survived; sleep 30", timeout=30)
    assert dropped.returncode == 255, (dropped.stdout, dropped.stderr)
    assert "survived" not in dropped.stdout
    assert time.monotonic() - started < 10

    assert _wait_for_ssh(lab, "chick1", boot_id) != boot_id
    after = ssh(lab, "chick1", "\n".join([
        "test -e /run/marker && echo marker",
        "sysctl -n net.ipv4.ip_forward net.ipv4.conf.all.rp_filter",
        "iptables -S FORWARD",
        "lsmod | cut -d' ' -f1",
        "systemctl is-active docker kubelet containerd",
        "cut -d' ' -f1 /proc/uptime",
    ]))
    lines = after.stdout.splitlines()
    assert "marker" not in lines
    assert lines[:2] == ["1", "0"], "persisted ip_forward applied, runtime rp_filter reset"
    assert lines[2:4] == ["-P FORWARD DROP", "-A FORWARD -s 10.244.0.0/16 -j ACCEPT"]
    assert "-A FORWARD -d 10.99.0.0/16 -j ACCEPT" not in lines
    assert "br_netfilter" in lines and "vxlan" not in lines
    assert lines[-4:-1] == ["active", "active", "inactive"], "a masked unit never starts"
    assert float(lines[-1]) < uptime

    # The same boot through the API, on a node whose persisted setting was removed: ip_forward
    # is back to the kernel default.
    other = sh(lab, "chick2", "cat /proc/sys/kernel/random/boot_id").stdout
    sh(lab, "chick2", "rm /etc/sysctl.d/99-kubernetes-cri.conf")
    lab.reboot("chick2")
    assert sh(lab, "chick2", "cat /proc/sys/kernel/random/boot_id").stdout != other
    assert sh(lab, "chick2", "sysctl -n net.ipv4.ip_forward").stdout == "0\n"
    assert ssh(lab, "chick2", "hostname").stdout == "chick2\n", "same host key after reboot"


def _lab_processes(lab: Lab) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(lab.directory) in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


def test_down_leaves_the_machine_as_it_was(make_lab: MakeLab) -> None:
    etcd = shutil.which("etcd") is not None
    lab = make_lab(["chick1", "chick2"], etcd=etcd)
    if etcd:
        assert lab.etcd_endpoint is not None
        put = sh(lab, "chick1", f"ETCDCTL_API=2 etcdctl --endpoints {lab.etcd_endpoint} "
                 "set /coreos.com/network/config '{\"Network\":\"10.244.0.0/16\"}'")
        assert put.stdout == '{"Network":"10.244.0.0/16"}\n', put.stderr
    prefix, bridge = lab.net.prefix, lab.net.bridge
    etcd_pid = json.loads(lab.state_path.read_text())["etcd"]["pid"] if etcd else None
    assert _lab_processes(lab)
    mounts_before = Path("/proc/self/mountinfo").read_text().count("\n")

    lab.down()
    lab.down()  # idempotent

    assert _lab_processes(lab) == []
    assert not Path(f"/sys/class/net/{bridge}").exists()
    assert not [n for n in Path("/sys/class/net").iterdir() if n.name.startswith(prefix)]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in netns
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert str(lab.directory) not in mountinfo
    assert mountinfo.count("\n") == mounts_before
    assert not lab.directory.exists() or not any(lab.directory.iterdir())
    if etcd_pid is not None:
        assert not Path(f"/proc/{etcd_pid}").exists()


def test_kube_api_follows_the_lab_and_can_be_left_out(make_lab: MakeLab) -> None:
    """`lab up` serves the API (kubeconfig, inventory variables) and returns once it has
    settled; `--no-kube` serves none and says nothing about one in the inventory."""
    with_api = make_lab(["chick1"])
    assert with_api.kube_settled()
    inv = yaml.safe_load(with_api.inventory_path.read_text())["all"]["vars"]
    assert inv["netops_kubeconfig"] == str(with_api.directory / "kubeconfig")
    nodes = with_api.kubectl("get", "nodes", "-o", "name").stdout.split()
    assert nodes == ["node/chick1"]
    bare = make_lab(["chick1"], kube=False)
    assert not (bare.directory / "kubeconfig").exists()
    assert bare.kube_state() == {"objects": [], "extra": {}}
    inv = yaml.safe_load(bare.inventory_path.read_text())["all"]["vars"]
    assert "netops_kubeconfig" not in inv and "netops_kube_cache_dir" not in inv
