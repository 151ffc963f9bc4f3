"""Fault injection for lab nodes: break a node the way the seed stories broke theirs.

Each fault is injected inside one running node through `Lab.node_exec` (root, the node's own
namespaces), so it lands exactly where the runbooks look: sysctls, iptables, files under the
node's /etc and /var overlays, the docker stand-in's state, etcd (the lab's, reached from the
node like a real node would). `healthy(lab, node)` first makes a node a well-configured
Kubernetes node that every library runbook accepts; faults build on top of it where their story
needs it (a stale CNI config needs the right one next to it).

    from netops.lab.faults import FAULTS, healthy, inject
    healthy(lab, "chick2")
    inject(lab, "stale-ipam@chick2,forward-drop")   # no @node: the lab's last node

The default node is the lab's LAST node: the first ones (chick1..3) form the control plane and
the `etcd` group, whose first host runs a runbook's `on: once` steps, and a lab of one node has
only that one anyway.

Lab limits that shape some faults (RUNBOOKS.md section 2): systemd-networkd does not run, so
its state is what the `networkctl` stand-in derives from the node's .network files and links
(the networkd fault is its config, not the flushed veths that follow from it); flannel is a
small stand-in service installed by the flannel faults (`/etc/netops-lab/flanneld`), reading
the lab's real etcd.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netops.errors import UserError
from netops.lab.units import DOCKER_IPTABLES

if TYPE_CHECKING:
    from netops.lab.lab import Lab

POD_CIDR = "10.244.0.0/16"
"""The pods' network in a healthy lab (flannel's default); node i gets 10.244.i.0/24."""
CNI_NET = "cbr0"
BRIDGE = "cni0"
FLANNEL_PREFIX = "/coreos.com/network"
IPAM_DIR = f"/var/lib/cni/networks/{CNI_NET}"


@dataclass(frozen=True, slots=True)
class Fault:
    """A named fault: `fault(lab, node)` injects it on one node."""

    name: str
    description: str
    runbook: str
    """The library runbook that detects (and, unless report-only, fixes) it."""
    apply: Callable[[Lab, str], None]

    def __call__(self, lab: Lab, node: str) -> None:
        self.apply(lab, node)


def sh(lab: Lab, node: str, script: str, *, timeout: float = 30) -> str:
    """Run `script` as root inside `node`; raise with its stderr when it fails."""
    done = lab.node_exec(node, script, check=False, timeout=timeout)
    if done.returncode != 0:
        raise UserError(f"fault injection on {node} failed (rc {done.returncode}): "
                        f"{done.stderr.strip() or done.stdout.strip()}\n--- script:\n{script}")
    return done.stdout


def _write(path: str, text: str, mode: str = "0644") -> str:
    """Shell that writes `text` (exact bytes, no added newline) to `path`."""
    d = path.rsplit("/", 1)[0] or "/"
    return (f"mkdir -p {shlex.quote(d)} && printf '%s' {shlex.quote(text)} > {shlex.quote(path)}"
            f" && chmod {mode} {shlex.quote(path)}\n")


def _index(lab: Lab, node: str) -> int:
    return lab.index(node)


def pod_subnet(lab: Lab, node: str) -> ipaddress.IPv4Network:
    """The node's pod subnet in a healthy lab: 10.244.<index>.0/24."""
    return ipaddress.IPv4Network(f"10.244.{_index(lab, node) % 256}.0/24")


def sandbox_id(node: str, pod: str) -> str:
    """A stable 64-hex sandbox id for a pod on a node (docker ps --no-trunc shape)."""
    return hashlib.sha256(f"{node}/{pod}".encode()).hexdigest()


# -- the healthy baseline ------------------------------------------------------------------------
K8S_SYSCTL = """\
# Kubernetes container-runtime prerequisites (kubernetes.io container-runtimes)
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
"""

FORWARD_DROPIN = """\
[Service]
ExecStartPost=/usr/sbin/iptables -P FORWARD ACCEPT
"""

FLANNEL_CONFLIST = {
    "name": CNI_NET,
    "cniVersion": "0.3.1",
    "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}

CALICO_CONFLIST = {
    "name": "k8s-pod-network",
    "cniVersion": "0.3.1",
    "plugins": [
        {"type": "calico", "log_level": "info", "datastore_type": "kubernetes",
         "nodename": "__KUBERNETES_NODE_NAME__", "mtu": 1440,
         "ipam": {"type": "calico-ipam"}, "policy": {"type": "k8s"},
         "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"}},
        {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
    ],
}

OPT_CNI = """\
mkdir -p /opt/cni/bin
for p in bridge host-local portmap loopback; do
  [ -x /opt/cni/bin/$p ] || cp /usr/lib/cni/$p /opt/cni/bin/$p 2>/dev/null || \
    printf '#!/bin/sh\\nexit 0\\n' > /opt/cni/bin/$p
done
# flannel's CNI binary is not packaged on Debian: a stub, enough for `test -x`.
[ -x /opt/cni/bin/flannel ] || printf '#!/bin/sh\\necho netops lab stub >&2; exit 1\\n' \
  > /opt/cni/bin/flannel
chmod 0755 /opt/cni/bin/*
"""


def _base_sysctl(lab: Lab, node: str) -> None:
    sh(lab, node, RESTORE_ORIGINALS + _write("/etc/sysctl.d/k8s.conf", K8S_SYSCTL)
       + _write("/etc/modules-load.d/k8s.conf", "overlay\nbr_netfilter\n")
       + "modprobe -a overlay br_netfilter\n"
       + "sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 "
         "net.bridge.bridge-nf-call-ip6tables=1\n")


_DOCKER_ON_NODE_IPTABLES = f"""\
# docker back on the node's iptables: forward-drop-legacy leaves docker's chains and FORWARD
# DROP in the legacy tables (a legacy table is only touched when it exists: reading creates it)
rm -f {DOCKER_IPTABLES}
for t in iptables-nft iptables-legacy; do
  if [ $t = iptables-legacy ]; then grep -qx filter /proc/net/ip_tables_names || continue; fi
  $t -w -P FORWARD ACCEPT; $t -w -X DOCKER 2>/dev/null; $t -w -X DOCKER-USER 2>/dev/null
done
true
"""


def _base_forward(lab: Lab, node: str) -> None:
    """A docker drop-in that re-opens FORWARD after every docker start, then docker restarted
    on the node's own iptables (as a provisioning tool would have left the node)."""
    sh(lab, node, _DOCKER_ON_NODE_IPTABLES
       + _write("/etc/systemd/system/docker.service.d/10-forward.conf", FORWARD_DROPIN)
       + "systemctl daemon-reload && systemctl restart docker\n")


def _base_cni(lab: Lab, node: str) -> None:
    sh(lab, node, OPT_CNI + _write("/etc/cni/net.d/10-flannel.conflist",
                                   json.dumps(FLANNEL_CONFLIST, indent=2) + "\n"))


def _bridge(lab: Lab, node: str) -> None:
    """cni0 with the node's pod gateway address, as the bridge plugin creates it."""
    gw = f"{pod_subnet(lab, node).network_address + 1}/24"
    sh(lab, node, f"""\
ip link show {BRIDGE} >/dev/null 2>&1 || ip link add {BRIDGE} type bridge
ip -4 -o addr show dev {BRIDGE} | grep -q ' {gw} ' || ip addr add {gw} dev {BRIDGE}
ip link set {BRIDGE} up
mkdir -p {IPAM_DIR}
[ -e {IPAM_DIR}/lock ] || {{ : > {IPAM_DIR}/lock; chmod 0750 {IPAM_DIR}/lock; }}
""")


def _docker_containers(lab: Lab, node: str, add: list[dict[str, object]]) -> None:
    """Add (or replace by id) containers in the docker stand-in's state."""
    payload = json.dumps(add)
    sh(lab, node, f"""\
python3 - {shlex.quote(payload)} <<'EOF'
import json, os, sys
path = "/var/lib/docker-standin/state.json"
try:
    with open(path) as f:
        data = json.load(f)
except FileNotFoundError:
    data = {{}}
data.setdefault("containers", [])
new = json.loads(sys.argv[1])
ids = {{c["id"] for c in new}}
data["containers"] = [c for c in data["containers"] if c["id"] not in ids] + new
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path + ".tmp", "w") as f:
    json.dump(data, f, indent=1)
os.replace(path + ".tmp", path)
EOF
""")


def add_pod(lab: Lab, node: str, pod: str, host: int, *, live: bool = True,
            hairpin: bool = True, ipam_format: str = "modern") -> str:
    """A pod on `node`: its sandbox (docker stand-in, dockershim names), its host-local
    allocation, and, when `live`, its netns with a veth on cni0. Returns the sandbox id.

    `live=False` leaves only the allocation file: the leak of RUNBOOKS.md 1.5.
    `ipam_format`: "modern" (`id\\r\\neth0`, no final newline), "old" (id only) or "empty".
    """
    _bridge(lab, node)
    sid = sandbox_id(node, pod)
    ip = str(pod_subnet(lab, node).network_address + host)
    content = {"modern": f"{sid}\r\neth0", "old": sid, "empty": ""}[ipam_format]
    script = _write(f"{IPAM_DIR}/{ip}", content) + _write(f"{IPAM_DIR}/last_reserved_ip.0", ip)
    if live:
        now = int(time.time()) - 3 * 86400
        _docker_containers(lab, node, [{
            "id": sid, "name": f"k8s_POD_{pod}_default_{sid[:8]}-uid_0",
            "image": "registry.k8s.io/pause:3.9", "command": "/pause",
            "labels": {"io.kubernetes.container.name": "POD", "io.kubernetes.pod.name": pod,
                       "io.kubernetes.pod.namespace": "default"},
            "created": now, "started": now, "state": "running", "exit_code": 0,
            "networks": ["none"]}])
        veth = f"veth{sid[:8]}"
        ns = f"pod-{sid[:8]}"
        script += f"""\
ip netns list | grep -qw {ns} || ip netns add {ns}
if ! ip link show {veth} >/dev/null 2>&1; then
  ip link add {veth} type veth peer name eth0 netns {ns}
  ip -n {ns} addr add {ip}/24 dev eth0
  ip -n {ns} link set eth0 up
  ip -n {ns} link set lo up
fi
ip link set {veth} master {BRIDGE} up
bridge link set dev {veth} hairpin {"on" if hairpin else "off"}
"""
    sh(lab, node, script)
    return sid


NETWORK_DIR = "/etc/systemd/network"


def _base_networkd(lab: Lab, node: str) -> None:
    """systemd-networkd enabled and running with one .network file, for the uplink only: every
    virtual link is left unmanaged (no file matches it). Any other .network file goes."""
    uplink = (f"# the node's uplink; docker, CNI and flannel links match no file (unmanaged)\n"
              f"[Match]\nName=eth0\n\n[Network]\n"
              f"Address={lab.address(node)}/{lab.net.cidr_len}\nGateway={lab.net.gateway}\n")
    sh(lab, node, f"mkdir -p {NETWORK_DIR} && rm -f {NETWORK_DIR}/*.network\n"
       + _write(f"{NETWORK_DIR}/10-uplink.network", uplink)
       + "systemctl enable --now systemd-networkd >/dev/null 2>&1\n")


def healthy(lab: Lab, node: str) -> None:
    """Make `node` a well-configured Kubernetes node that every library runbook accepts:
    the sysctl/module prerequisites persisted, docker's FORWARD DROP re-opened by a correct
    drop-in, flannel's CNI config and plugin binaries, cni0 with one running pod, networkd
    managing the uplink only."""
    _clear_faults(lab, node)
    _base_sysctl(lab, node)
    _base_forward(lab, node)
    _base_cni(lab, node)
    add_pod(lab, node, "coredns-5d78c9869d-x7k2p", 2)
    _base_networkd(lab, node)
    _base_kubelet(lab, node)
    from netops.lab.faults_calico import healthy_calico
    from netops.lab.faults_k8s import healthy_k8s
    healthy_calico(lab, node)
    healthy_k8s(lab, node)


def _clear_faults(lab: Lab, node: str) -> None:
    """Undo what a fault leaves that the baseline below would not overwrite: the conntrack
    shadow mount, a leftover calico CNI config, and a flannel stand-in (its unit, links,
    lease file, and the etcd prefix its faults wrote)."""
    ep = lab.etcd_endpoint
    if ep and not lab.etcd_v2:  # flannel-etcd-v2-off: the v2 API back on
        lab.restart_etcd(enable_v2=True)
    p = shlex.quote(FLANNEL_PREFIX)
    etcd = (f"ETCDCTL_API=3 etcdctl --endpoints {ep} del --prefix {p}/ >/dev/null 2>&1\n"
            f"ETCDCTL_API=2 etcdctl --endpoints {ep} rm --recursive {p} >/dev/null 2>&1\n"
            if ep else "")
    sh(lab, node, f"""\
while mountpoint -q /proc/sys/net/netfilter/nf_conntrack_count; do
  umount /proc/sys/net/netfilter/nf_conntrack_count || break
done
rm -f /etc/cni/net.d/10-calico.conflist /etc/cni/net.d/calico-kubeconfig
if [ -e /etc/systemd/system/flanneld.service ]; then
  systemctl disable flanneld >/dev/null 2>&1; systemctl stop flanneld >/dev/null 2>&1
  rm -f /etc/systemd/system/flanneld.service /run/flannel/subnet.env
  ip link del flannel.1 2>/dev/null
  {etcd.strip() or ':'}
fi
true
""")


def _base_kubelet(lab: Lab, node: str) -> None:
    """kubelet enabled and running: the API stand-in's node turns Ready and its pods start."""
    sh(lab, node, "systemctl enable kubelet >/dev/null 2>&1; systemctl start kubelet\n")


# -- faults ----------------------------------------------------------------------------------------
def ip_forward_off(lab: Lab, node: str) -> None:
    sh(lab, node, "sysctl -qw net.ipv4.ip_forward=0")


def ip_forward_boot_override(lab: Lab, node: str) -> None:
    # Runtime stays 1; a hardening package's sysctl file, sorting after k8s.conf, turns it
    # off at the next boot (SUSE/doc-caasp#574).
    sh(lab, node, "sysctl -qw net.ipv4.ip_forward=1\n" + _write(
        "/etc/sysctl.d/zz-cis-hardening.conf",
        "# hardening profile: this host is not a router\nnet.ipv4.ip_forward = 0\n"))


ORIG = "/var/lib/netops-lab/orig"
"""Where a fault keeps the node's original of a file it edits; `healthy` puts it back."""


def keep_original(*paths: str) -> str:
    """Shell that saves each path (a symlink as a symlink) under ORIG once, before a fault
    edits it; `healthy` restores them. A path that was absent is marked `.absent` (also a
    saved original: a second fault must not then save the first one's file)."""
    return "".join(f"[ -e {ORIG}{p} ] || [ -L {ORIG}{p} ] || [ -e {ORIG}{p}.absent ] || "
                   f"{{ mkdir -p {ORIG}{p.rsplit('/', 1)[0]} && "
                   f"{{ cp -a {p} {ORIG}{p} 2>/dev/null || : > {ORIG}{p}.absent; }}; }}\n"
                   for p in paths)


RESTORE_ORIGINALS = f"""\
# put back what faults edited (kept under {ORIG}), and drop netops' backups of them
if [ -d {ORIG} ]; then
  (cd {ORIG} && find . \\( -type f -o -type l \\) -print) | while read -r rel; do
    p=${{rel#.}}
    case $p in
      *.absent) rm -rf "${{p%.absent}}" "${{p%.absent}}.netops.bak" ;;
      *) rm -rf "$p" "$p.netops.bak" && cp -a "{ORIG}$p" "$p" ;;
    esac
  done
  rm -rf {ORIG}
fi
"""


def ip_forward_sysctl_conf(lab: Lab, node: str) -> None:
    # Debian: /etc/sysctl.d/99-sysctl.conf is a symlink to ../sysctl.conf. An old hardening
    # line in /etc/sysctl.conf switches forwarding off at the next boot (it is applied twice:
    # through the link, and by procps as /etc/sysctl.conf). Runtime stays 1.
    sh(lab, node, keep_original("/etc/sysctl.conf", "/etc/sysctl.d/99-sysctl.conf")
       + "[ -L /etc/sysctl.d/99-sysctl.conf ] || ln -sfn ../sysctl.conf "
         "/etc/sysctl.d/99-sysctl.conf\n"
       + "printf '\\n# hardening: this host is not a router\\nnet.ipv4.ip_forward = 0\\n' "
         ">> /etc/sysctl.conf\nsysctl -qw net.ipv4.ip_forward=1\n")


def bridge_nf_off(lab: Lab, node: str) -> None:
    sh(lab, node, "sysctl -qw net.bridge.bridge-nf-call-iptables=0 "
                  "net.bridge.bridge-nf-call-ip6tables=0")


_REMOVE_FORWARD_FIXES = """\
# Remove whatever re-opens FORWARD after docker starts (drop-ins, daemon.json) and the scoped
# pod-CIDR rules, then let docker start as Docker >= 1.13 does: FORWARD DROP.
for f in /etc/systemd/system/docker.service.d/*.conf; do
  [ -e "$f" ] && grep -q 'FORWARD' "$f" && rm -f "$f"
done
while iptables -D FORWARD -s 10.244.0.0/16 -j ACCEPT 2>/dev/null; do :; done
while iptables -D FORWARD -d 10.244.0.0/16 -j ACCEPT 2>/dev/null; do :; done
"""


def forward_drop(lab: Lab, node: str) -> None:
    sh(lab, node, _REMOVE_FORWARD_FIXES
       + "systemctl daemon-reload && systemctl restart docker\n")


def docker_dropin_no_service(lab: Lab, node: str) -> None:
    # The seed's own fix: `echo ... >> exec_start.conf` creates a drop-in without a [Service]
    # header, which systemd ignores; the restart then leaves FORWARD DROP in place.
    sh(lab, node, _REMOVE_FORWARD_FIXES + """\
mkdir -p /etc/systemd/system/docker.service.d
echo "ExecStartPost=/sbin/iptables -P FORWARD ACCEPT" \
  >> /etc/systemd/system/docker.service.d/exec_start.conf
systemctl daemon-reload
systemctl restart docker
""")


def forward_drop_legacy(lab: Lab, node: str) -> None:
    # Issue 18: docker writes iptables-legacy (a static or vendored docker with its own
    # iptables) while the node's `iptables` is nf_tables. The provisioning drop-in runs the
    # node's `iptables`: it re-opens the nf_tables FORWARD, never the legacy one docker closes.
    # As after a boot with this docker: its chains only in legacy, no pod-CIDR accepts there,
    # and only the provisioning drop-in (a fix of an earlier run goes).
    sh(lab, node, """\
iptables -V | grep -q nf_tables || { echo "the node's iptables is not nf_tables" >&2; exit 1; }
""" + _REMOVE_FORWARD_FIXES
       + _write("/etc/systemd/system/docker.service.d/10-forward.conf", FORWARD_DROPIN)
       + _write(DOCKER_IPTABLES, "legacy\n") + """\
iptables -w -X DOCKER 2>/dev/null; iptables -w -X DOCKER-USER 2>/dev/null
for d in -s -d; do
  while iptables-legacy -w -D FORWARD $d 10.244.0.0/16 -j ACCEPT 2>/dev/null; do :; done
done
systemctl daemon-reload && systemctl restart docker
""")


def stale_ipam(lab: Lab, node: str) -> None:
    # Two running pods, one exited sandbox (still a container: its IP is not leaked), and four
    # leaked allocations: three in today's `id\r\neth0` format, one from an older plugin (id
    # only) and one empty file (containernetworking/plugins#498).
    _base_cni(lab, node)
    add_pod(lab, node, "coredns-5d78c9869d-x7k2p", 2)
    add_pod(lab, node, "web-7f9c6d5b8-qwz4r", 3)
    exited = add_pod(lab, node, "job-28211400-abcde", 4, live=False)
    _docker_containers(lab, node, [{
        "id": exited, "name": f"k8s_POD_job-28211400-abcde_default_{exited[:8]}-uid_0",
        "image": "registry.k8s.io/pause:3.9", "command": "/pause",
        "labels": {"io.kubernetes.container.name": "POD"}, "created": int(time.time()) - 7200,
        "started": int(time.time()) - 7200, "finished": int(time.time()) - 3600, "state": "exited",
        "exit_code": 0}])
    for host, pod, fmt in ((10, "web-7f9c6d5b8-old01", "modern"),
                           (11, "web-7f9c6d5b8-old02", "modern"),
                           (12, "api-6b8d9f7c4-old03", "modern"),
                           (13, "api-6b8d9f7c4-old04", "old"),
                           (14, "api-6b8d9f7c4-old05", "empty")):
        add_pod(lab, node, pod, host, live=False, ipam_format=fmt)


def cni_config_missing(lab: Lab, node: str) -> None:
    # flannel's install-cni never copied its config (flannel#709: SELinux), or it was deleted.
    _base_cni(lab, node)
    sh(lab, node, "rm -f /etc/cni/net.d/*.conf /etc/cni/net.d/*.conflist "
                  "/etc/cni/net.d/*.json")


def cni_config_stale(lab: Lab, node: str) -> None:
    # Migrated from calico to flannel; calico's config was left behind and sorts first
    # (10-calico.conflist < 10-flannel.conflist), so the runtime still uses calico.
    _base_cni(lab, node)
    sh(lab, node, _write("/etc/cni/net.d/10-calico.conflist",
                         json.dumps(CALICO_CONFLIST, indent=2) + "\n")
       + _write("/etc/cni/net.d/calico-kubeconfig", "# calico-kubeconfig (stale)\n", "0600"))


def hairpin_off(lab: Lab, node: str) -> None:
    # The CNI config lost hairpinMode (a hand-written bridge/flannel config), so each new pod's
    # veth joins cni0 with hairpin off: that pod cannot reach itself through its Service.
    _base_cni(lab, node)
    conf = json.loads(json.dumps(FLANNEL_CONFLIST))
    conf["plugins"][0]["delegate"]["hairpinMode"] = False
    sh(lab, node, _write("/etc/cni/net.d/10-flannel.conflist", json.dumps(conf, indent=2) + "\n"))
    add_pod(lab, node, "coredns-5d78c9869d-x7k2p", 2)
    add_pod(lab, node, "web-7f9c6d5b8-hp001", 5, hairpin=False)
    add_pod(lab, node, "web-7f9c6d5b8-hp002", 6, hairpin=False)


ZZ_DEFAULT_NETWORK = """\
# CoreOS's default network file (coreos/init zz-default.network, coreos/bugs#1554): no [Match],
# so it fits every link, docker's and the CNI plugin's veths and bridges included.
[Network]
DHCP=v4
"""

DOCKER_VETH_NETWORK = """\
# A file for docker's veths without Unmanaged=yes (like CoreOS's 50-docker-veth.network, which
# the seed's fix masked): networkd manages every veth.
[Match]
Name=veth*

[Network]
LinkLocalAddressing=no
"""


def networkd_catchall(lab: Lab, node: str) -> None:
    # Seed 002: networkd runs, and .network files that match every link (zz-default, no
    # [Match]) and every veth (Name=veth*) make it manage what docker and CNI set up; it
    # flushes their configuration, and random pods lose their network. Both sort after the
    # uplink's file, so eth0 stays with 10-uplink.network.
    sh(lab, node, f"mkdir -p {NETWORK_DIR}\n"
       + _write(f"{NETWORK_DIR}/50-docker-veth.network", DOCKER_VETH_NETWORK)
       + _write(f"{NETWORK_DIR}/zz-default.network", ZZ_DEFAULT_NETWORK)
       + "systemctl enable --now systemd-networkd >/dev/null 2>&1\n")


def conntrack_near_full(lab: Lab, node: str) -> None:
    # nf_conntrack_count cannot be raised in a node netns: shadow it (RUNBOOKS.md section 2)
    # with a file at 95% of nf_conntrack_max. /run is a tmpfs, so a reboot clears the fault.
    sh(lab, node, """\
max=$(sysctl -n net.netfilter.nf_conntrack_max)
mkdir -p /run/netops-lab/faults
echo $((max * 95 / 100)) > /run/netops-lab/faults/nf_conntrack_count
mountpoint -q /proc/sys/net/netfilter/nf_conntrack_count || \
  mount --bind /run/netops-lab/faults/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_count
""")


# -- flannel + etcd ----------------------------------------------------------------------------
FLANNELD = r'''#!/usr/bin/python3
"""netops lab stand-in for flanneld's start (RUNBOOKS.md 1.7): read the network config from
etcd (v3, or v2 for flannel < flannel-io/flannel#1562), keep or take a subnet lease, write
/run/flannel/subnet.env and set up flannel.1. Settings: /etc/netops-lab/flanneld.env."""
import ipaddress, json, os, subprocess, sys

env = dict(line.strip().split("=", 1) for line in open("/etc/netops-lab/flanneld.env")
           if "=" in line and not line.startswith("#"))
EP, PREFIX, API, IP = env["ENDPOINTS"], env["PREFIX"], env["API"], env["PUBLIC_IP"]


def etcd(*args, check=True):
    done = subprocess.run(["etcdctl", "--endpoints", EP, *args], capture_output=True,
                          text=True, env={**os.environ, "ETCDCTL_API": API})
    if check and done.returncode != 0:
        sys.exit(f"flanneld: etcdctl {' '.join(args)}: {done.stderr.strip()}")
    return done


if API == "3":
    raw = etcd("get", "--print-value-only", PREFIX + "/config").stdout.strip()
else:
    raw = etcd("get", PREFIX + "/config", check=False).stdout.strip()
if not raw:
    sys.exit(f"E flanneld: Couldn't fetch network config: 100: Key not found ({PREFIX}/config)")
config = json.loads(raw)
network = ipaddress.ip_network(config["Network"], strict=False)  # flannel masks host bits
length = int(config.get("SubnetLen", 24))

leases = {}
if API == "3":
    lines = etcd("get", "--prefix", PREFIX + "/subnets/").stdout.splitlines()
    for key, value in zip(lines[0::2], lines[1::2]):
        leases[key] = value
else:
    for key in etcd("ls", PREFIX + "/subnets", check=False).stdout.split():
        leases[key] = etcd("get", key).stdout.strip()


def subnet_of(key):
    return ipaddress.ip_network(key.rsplit("/", 1)[1].replace("-", "/"))


taken = {subnet_of(k) for k in leases}
mine = [subnet_of(k) for k, v in leases.items()
        if json.loads(v).get("PublicIP") == IP and subnet_of(k).subnet_of(network)]
if mine:
    subnet = mine[0]
else:  # SubnetMin: flannel skips the network's first subnet
    subnet = next(s for s in list(network.subnets(new_prefix=length))[1:] if s not in taken)
key = f"{PREFIX}/subnets/{subnet.network_address}-{subnet.prefixlen}"
lease = json.dumps({"PublicIP": IP, "BackendType": "vxlan",
                    "BackendData": {"VNI": 1, "VtepMAC": "02:42:ac:11:00:02"}})
etcd("put", key, lease) if API == "3" else etcd("set", key, lease)

os.makedirs("/run/flannel", exist_ok=True)
with open("/run/flannel/subnet.env", "w") as f:
    f.write(f"FLANNEL_NETWORK={network}\nFLANNEL_SUBNET={subnet.network_address + 1}/"
            f"{subnet.prefixlen}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
ip = lambda *a: subprocess.run(["ip", *a], capture_output=True, text=True)
if ip("link", "show", "flannel.1").returncode != 0:
    ip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", IP, "dev", "eth0",
       "dstport", "8472", "nolearning")
ip("addr", "flush", "dev", "flannel.1")
ip("addr", "add", f"{subnet.network_address}/32", "dev", "flannel.1")
ip("link", "set", "flannel.1", "up")
print(f"flanneld: lease {subnet} in {network}")
'''

FLANNEL_UNIT = """\
[Unit]
Description=Flannel overlay network agent (netops lab stand-in)
Documentation=https://github.com/flannel-io/flannel
After=network-online.target etcd.service
Before=docker.service

[Service]
ExecStart=/usr/bin/flanneld
X-NetopsLab-ExecStart=/usr/bin/python3 /etc/netops-lab/flanneld

[Install]
WantedBy=multi-user.target
"""


def _etcd_endpoint(lab: Lab) -> str:
    endpoint = lab.etcd_endpoint
    if not endpoint:
        raise UserError("the flannel faults need the lab's etcd (the lab was built without it)")
    return endpoint


def overlapping_network(lab: Lab) -> str:
    """A flannel Network that contains every node address (seed 003: 10.252.61.0/16 held the
    nodes' 10.252.158.x), written with host bits as the seed did."""
    net = lab.net.subnet.supernet(new_prefix=16)
    return f"{net.network_address + 61 * 256}/16"


def _flannel(lab: Lab, node: str, *, api: str, write_api: str, network: str) -> None:
    """Put flannel's config into etcd (keyspace `write_api`), install and start the flanneld
    stand-in reading keyspace `api`, and give cni0 the address the bridge plugin would have
    given it under that lease."""
    ep = _etcd_endpoint(lab)
    config = json.dumps({"Network": network, "SubnetLen": 24, "Backend": {"Type": "vxlan"}})
    p = shlex.quote(FLANNEL_PREFIX)
    put = (f"ETCDCTL_API=3 etcdctl --endpoints {ep} put {p}/config {shlex.quote(config)}"
           if write_api == "3" else
           f"ETCDCTL_API=2 etcdctl --endpoints {ep} set {p}/config {shlex.quote(config)}")
    settings = (f"ENDPOINTS={ep}\nPREFIX={FLANNEL_PREFIX}\nAPI={api}\n"
                f"PUBLIC_IP={lab.address(node)}\n")
    sh(lab, node, f"""\
# a clean slate: this node's flannel state, and the prefix in both keyspaces
systemctl stop flanneld 2>/dev/null || true
rm -f /run/flannel/subnet.env
ip link del flannel.1 2>/dev/null || true
ETCDCTL_API=3 etcdctl --endpoints {ep} del --prefix {p}/ >/dev/null
ETCDCTL_API=2 etcdctl --endpoints {ep} rm --recursive {p} >/dev/null 2>&1 || true
{put} >/dev/null
""" + _write("/etc/netops-lab/flanneld", FLANNELD, "0755")
       + _write("/etc/netops-lab/flanneld.env", settings)
       + _write("/etc/systemd/system/flanneld.service", FLANNEL_UNIT)
       + "systemctl daemon-reload\nsystemctl enable flanneld 2>/dev/null\n"
       + "systemctl restart flanneld || true\n")
    _base_cni(lab, node)
    _bridge(lab, node)
    sh(lab, node, f"""\
[ -r /run/flannel/subnet.env ] || exit 0  # flanneld failed: cni0 keeps its address
. /run/flannel/subnet.env
ip addr flush dev {BRIDGE}
ip addr add "$FLANNEL_SUBNET" dev {BRIDGE}
""")


def flannel_overlap(lab: Lab, node: str) -> None:
    _flannel(lab, node, api="3", write_api="3", network=overlapping_network(lab))


def flannel_overlap_v2(lab: Lab, node: str) -> None:
    _flannel(lab, node, api="2", write_api="2", network=overlapping_network(lab))


def flannel_config_v2_only(lab: Lab, node: str) -> None:
    # flanneld >= 0.18 reads v3 only, but the config was set with v2 `etcdctl set` (the seed's
    # habit): flanneld finds no config and fails; the node has no subnet.env.
    _flannel(lab, node, api="3", write_api="2", network=POD_CIDR)


def flannel_config_v3_only(lab: Lab, node: str) -> None:
    # Issue 18 / seed 003: flanneld <= 0.17 (a v2 client) leased from an overlapping Network
    # in v2; the config was then rewritten with today's etcdctl (v3 by default) and is gone
    # from v2. Every live lease is in v2; the config only in v3, which this flanneld never
    # reads.
    _flannel(lab, node, api="2", write_api="2", network=overlapping_network(lab))
    ep, p = _etcd_endpoint(lab), shlex.quote(FLANNEL_PREFIX)
    sh(lab, node, f"""\
c=$(ETCDCTL_API=2 etcdctl --endpoints {ep} get {p}/config)
ETCDCTL_API=2 etcdctl --endpoints {ep} rm {p}/config >/dev/null
ETCDCTL_API=3 etcdctl --endpoints {ep} put {p}/config "$c" >/dev/null
""")


def flannel_etcd_v2_off(lab: Lab, node: str) -> None:
    # etcd >= 3.4 runs without the v2 API by default (--enable-v2=false); the config is in v3
    # (etcdctl's default), but flanneld <= 0.17 is a v2 client: every request fails with
    # "client: response is invalid json", no lease, no subnet.env (flannel#1191).
    _flannel(lab, node, api="2", write_api="3", network=POD_CIDR)
    lab.restart_etcd(enable_v2=False)
    sh(lab, node, "systemctl restart flanneld >/dev/null 2>&1; rm -f /run/flannel/subnet.env; "
                  "ip link del flannel.1 2>/dev/null; true")


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("ip-forward-off", "net.ipv4.ip_forward is 0 now", "check-ip-forward",
          ip_forward_off),
    Fault("ip-forward-boot-override", "ip_forward is 1 now, but a later sysctl.d file sets 0 "
          "at the next boot", "check-ip-forward", ip_forward_boot_override),
    Fault("ip-forward-sysctl-conf", "ip_forward is 1 now, but /etc/sysctl.conf (also read "
          "through Debian's 99-sysctl.conf symlink) sets 0 at the next boot",
          "check-ip-forward", ip_forward_sysctl_conf),
    Fault("bridge-nf-off", "bridge-nf-call-iptables and -ip6tables are 0", "check-bridge-nf",
          bridge_nf_off),
    Fault("forward-drop", "docker restarted with FORWARD DROP and no pod-CIDR accepts, nothing "
          "re-opens it", "iptables-forward-accept", forward_drop),
    Fault("docker-dropin-no-service", "the seed's docker drop-in without [Service] (ignored), "
          "FORWARD DROP", "iptables-forward-accept", docker_dropin_no_service),
    Fault("forward-drop-legacy", "docker writes iptables-legacy, the node's iptables is "
          "nf_tables: the drop-in re-opens nf_tables only, FORWARD DROP in legacy",
          "iptables-forward-accept", forward_drop_legacy),
    Fault("stale-ipam", "leaked host-local allocations (id\\r\\neth0, id-only, empty) next to "
          "live pods' ones", "flush-stale-ipam", stale_ipam),
    Fault("flannel-overlap", "flannel Network in etcd v3 overlaps the node subnet; flanneld "
          "(v3) leased from it", "reset-flannel-subnet", flannel_overlap),
    Fault("flannel-overlap-v2", "the same in the v2 keyspace, read by an old flanneld (v2)",
          "reset-flannel-subnet", flannel_overlap_v2),
    Fault("flannel-config-v2-only", "flannel config only in the v2 keyspace, flanneld reads "
          "v3 and fails", "reset-flannel-subnet", flannel_config_v2_only),
    Fault("flannel-config-v3-only", "flanneld <= 0.17 (v2) and its leases in v2, the "
          "(overlapping) config only in v3", "reset-flannel-subnet", flannel_config_v3_only),
    Fault("flannel-etcd-v2-off", "etcd without the v2 API (--enable-v2=false, etcd 3.4's "
          "default) under a v2 flanneld (<= 0.17): no lease, report only",
          "reset-flannel-subnet", flannel_etcd_v2_off),
    Fault("networkd-catchall", "systemd-networkd runs with .network files that match every "
          "link (no [Match]) and every veth (Name=veth*): it manages cni0 and pod veths",
          "networkd-unmanage-veth", networkd_catchall),
    Fault("cni-config-missing", "no CNI config in /etc/cni/net.d", "check-cni-config",
          cni_config_missing),
    Fault("cni-config-stale", "a leftover 10-calico.conflist sorts before flannel's config",
          "check-cni-config", cni_config_stale),
    Fault("hairpin-off", "CNI config without hairpinMode, new pods' cni0 ports hairpin off",
          "hairpin-mode", hairpin_off),
    Fault("conntrack-near-full", "nf_conntrack_count at 95% of nf_conntrack_max (bind mount)",
          "check-conntrack", conntrack_near_full),
)}


# The Kubernetes-facing faults live in their own modules (they import this one).
from netops.lab.faults_calico import CALICO_FAULTS  # noqa: E402
from netops.lab.faults_k8s import K8S_FAULTS  # noqa: E402

FAULTS.update({f.name: f for f in (*CALICO_FAULTS, *K8S_FAULTS)})


def parse(spec: str, names: list[str]) -> list[tuple[str, str]]:
    """`NAME[@node],...` -> [(fault, node)]; no @node means the lab's last node."""
    out = []
    for item in (x.strip() for x in spec.split(",")):
        if not item:
            continue
        name, _, node = item.partition("@")
        if name not in FAULTS:
            raise UserError(f"unknown fault {name!r}", hint="faults: " + ", ".join(FAULTS))
        node = node or (names[-1] if names else "")
        if node not in names:
            raise UserError(f"fault {item!r}: no node {node!r} in this lab",
                            hint=f"nodes: {', '.join(names[:10])}")
        out.append((name, node))
    if not out:
        raise UserError(f"no fault in {spec!r}", hint="faults: " + ", ".join(FAULTS))
    return out


def inject(lab: Lab, spec: str) -> list[tuple[str, str]]:
    """Inject every fault of `spec` (`NAME[@node],...`); returns what was injected where."""
    done = parse(spec, list(lab.names))
    for name, node in done:
        FAULTS[name](lab, node)
    return done
