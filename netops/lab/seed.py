"""Files the lab writes: lab-wide directories bound into nodes, each node's first-boot overlay
content, and the controller's side (key, ssh_config, known_hosts, inventory)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from netops.lab.model import CONTROL_PLANE, NodeDefaults
from netops.lab.units import UNITS

STANDINS = ("systemctl", "docker", "crictl", "modprobe", "lsmod", "reboot", "networkctl",
            "journalctl", "kubelet-pod", "calico-node", "getenforce", "setenforce",
            "node-cache", "kube-proxy")
_ASSIGN = re.compile(r"^\s*-?\s*([^=\s#;]+)\s*=")

SSHD_CONFIG = """\
# netops lab node: key-only root login on the node's address.
Port 22
ListenAddress {address}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
MaxSessions 100
MaxStartups 1000
Subsystem sftp internal-sftp
"""


@dataclass(frozen=True, slots=True)
class NodeFiles:
    name: str
    address: str
    host_key_pub: str  # "ssh-ed25519 AAAA..."


def sanitize_sysctl(text: str) -> str:
    """Comment out every non-`net.*` assignment: kernel.*, vm.*, fs.* are host-wide, and a
    `sysctl --system` inside a node must not reach the host."""
    out = []
    for line in text.splitlines():
        m = _ASSIGN.match(line)
        if m and not line.lstrip().startswith(("#", ";")) and \
                not m.group(1).replace("/", ".").startswith("net."):
            line = f"# netops lab: host-wide key, not set in a node: {line.strip()}"
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def write_lab_dirs(directory: Path) -> None:
    """Directories every node binds read-only: stand-ins, unit files, sanitized sysctl.d."""
    standins = directory / "standins"
    standins.mkdir(parents=True, exist_ok=True)
    source = resources.files("netops.lab") / "standins"
    for name in STANDINS:
        target = standins / name
        target.write_bytes((source / name).read_bytes())
        target.chmod(0o755)
    units = directory / "units"
    units.mkdir(exist_ok=True)
    for name, text in UNITS.items():
        (units / name).write_text(text)
    sysctl = directory / "sysctl.d"
    sysctl.mkdir(exist_ok=True)
    host = Path("/usr/lib/sysctl.d")
    for conf in sorted(host.glob("*.conf")) if host.is_dir() else []:
        try:
            (sysctl / conf.name).write_text(sanitize_sysctl(conf.read_text()))
        except OSError:
            continue  # a dangling link: systemd-sysctl would skip it as well
    ctl = directory / "ctl"
    ctl.mkdir(exist_ok=True)
    ctl.chmod(0o700)


def _whiteout(path: Path) -> None:
    """Hide a lower-layer file in an overlay upper dir (a 0/0 character device)."""
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))


def host_key() -> tuple[bytes, str]:
    """A fresh ed25519 host key: (OpenSSH private key, public key line)."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH,
                                ser.NoEncryption())
    public = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    return private, public.decode()


def seed_node(node_dir: Path, name: str, address: str, hosts: Sequence[tuple[str, str]],
              client_pub: str, defaults: NodeDefaults) -> str:
    """First-boot content of a node: overlay upper dirs (its /etc and /var changes), /root and
    a boot id. Returns the node's host public key line."""
    etc, var = node_dir / "etc", node_dir / "var"
    for d in (etc, var, node_dir / "opt", *(node_dir / "work" / x for x in ("etc", "var", "opt"))):
        d.mkdir(parents=True, exist_ok=True)
    (etc / "hostname").write_text(f"{name}\n")
    (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters", "", "# netops lab nodes"]
    lines += [f"{ip}\t{host}" for host, ip in hosts]
    (etc / "hosts").write_text("\n".join(lines) + "\n")

    ssh = etc / "ssh"
    ssh.mkdir()
    for lower in Path("/etc/ssh").glob("ssh_host_*"):
        if not lower.name.startswith("ssh_host_ed25519_key"):
            _whiteout(ssh / lower.name)  # the host's own keys stay the host's
    private, public = host_key()
    key = ssh / "ssh_host_ed25519_key"
    key.write_bytes(private)
    key.chmod(0o600)
    (ssh / "ssh_host_ed25519_key.pub").write_text(f"{public} root@{name}\n")
    (ssh / "sshd_config").write_text(SSHD_CONFIG.format(address=address))

    # The node's own /etc/systemd/system: opaque, so the host's enabled units do not show.
    system = etc / "systemd" / "system"
    system.mkdir(parents=True)
    os.setxattr(system, "trusted.overlay.opaque", b"y")
    wants = system / "multi-user.target.wants"
    wants.mkdir()
    for unit in defaults.enabled_units:
        (wants / unit).symlink_to(f"/lib/systemd/system/{unit}")
    (system / "sshd.service").symlink_to("/lib/systemd/system/ssh.service")

    for relative, text in defaults.etc_files:
        path = etc / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    # Host sysctl files with host-wide keys get a net-only copy in the node.
    for conf in [*Path("/etc/sysctl.d").glob("*.conf"), Path("/etc/sysctl.conf")]:
        if conf.is_file() and not conf.is_symlink():
            text = conf.read_text()
            clean = sanitize_sysctl(text)
            if clean != text:
                target = etc / conf.relative_to("/etc")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(clean)

    root = node_dir / "root"
    (root / ".ssh").mkdir(parents=True, mode=0o700)
    root.chmod(0o700)
    (root / ".ssh" / "authorized_keys").write_text(client_pub.strip() + "\n")
    (root / ".ssh" / "authorized_keys").chmod(0o600)
    new_boot_id(node_dir)
    return public


def new_boot_id(node_dir: Path) -> str:
    boot_id = str(uuid.uuid4())
    (node_dir / "boot_id").write_text(boot_id + "\n")
    return boot_id


def client_key(directory: Path) -> str:
    """The lab's SSH key pair (ssh-keygen); returns the public key line."""
    key = directory / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "netops-lab",
                        "-f", str(key)], check=True, stdin=subprocess.DEVNULL)
    return Path(f"{key}.pub").read_text().strip()


def write_client_files(directory: Path, nodes: Sequence[NodeFiles],
                       etcd_endpoint: str | None, *, kube: bool = True) -> None:
    """ssh_config, known_hosts and the Ansible inventory, all inside the lab directory."""
    key = directory / "id_ed25519"
    known = directory / "known_hosts"
    blocks = [f"# netops lab: use with `ssh -F {directory / 'ssh_config'} NODE`\n"]
    for n in nodes:
        blocks.append(
            f"Host {n.name}\n  HostName {n.address}\n  User root\n  IdentityFile {key}\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"
            "  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
            "  ConnectTimeout 5\n  LogLevel ERROR\n")
    _atomic_write(directory / "ssh_config", "\n".join(blocks))
    _atomic_write(known, "".join(f"{n.name},{n.address} {n.host_key_pub}\n" for n in nodes))

    def hosts(names: Sequence[str]) -> dict[str, object]:
        # One dict per occurrence: shared ones would come out as YAML anchors and aliases.
        return {n.name: {"ansible_host": n.address} for n in nodes if n.name in names}

    control = [h for h in CONTROL_PLANE if h in {n.name for n in nodes}]
    workers = [n.name for n in nodes if n.name not in control]
    lab_vars: dict[str, object] = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        "netops_ssh_config": str(directory / "ssh_config"),
        "netops_known_hosts": str(known),
    }
    if kube:
        lab_vars["netops_kubeconfig"] = str(directory / "kubeconfig")
        lab_vars["netops_kube_cache_dir"] = str(directory / "kube" / "cache")
    if etcd_endpoint:
        lab_vars["netops_etcd_endpoints"] = etcd_endpoint
    children: dict[str, object] = {
        group: {"hosts": hosts(members)} if members else {}
        for group, members in (("control_plane", control), ("etcd", control),
                               ("workers", workers))
    }
    doc = {"all": {"vars": lab_vars, "children": children}}
    text = "# netops lab inventory (written by `netops lab up`)\n" + yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=False)
    _atomic_write(directory / "inventory.yaml", text)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def remove_tree(path: Path) -> None:
    """rmtree that also copes with overlay work dirs (mode 000) and whiteouts."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
