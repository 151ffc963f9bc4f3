"""Faults of the Kubernetes-facing runbooks (selinux-cni-install, fix-node-resolv-conf,
check-nodelocaldns, check-kube-proxy-rules), registered into `faults.FAULTS`, and their part of
the healthy baseline (`healthy_k8s`, called by `faults.healthy`).

The node side of these stories lives in the pods the lab's kubelet starts through the
`kubelet-pod` stand-in: node-local-dns runs `node-cache`, kube-proxy runs `kube-proxy`,
flannel's install-cni copies its CNI config unless `getenforce` says Enforcing, coredns logs the
loop plugin's FATAL line. Faults that involve a pod's start go through the lab's API (the real
kubectl against the lab's kubeconfig), as an operator or a controller would.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from typing import TYPE_CHECKING, Any

from netops.errors import UserError
from netops.lab.faults import FLANNEL_CONFLIST, Fault, _write, keep_original, sh
from netops.lab.kube.cluster import HOOK, kubelet_request

if TYPE_CHECKING:
    from netops.lab.lab import Lab

SELINUX_CONFIG = "/etc/selinux/config"
SELINUX_RUN = "/run/netops-lab/selinux/enforce"
FLANNEL_CNI_SOURCE = "/etc/netops-lab/kube-flannel/cni-conf.json"
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
RESOLVED_CONF = "/run/systemd/resolve/resolv.conf"
STUB_CONF = "/run/systemd/resolve/stub-resolv.conf"
LOCAL_DNS_IP = "169.254.25.10"
PODS_RUN = "/run/netops-lab/pods"


def selinux_config(mode: str) -> str:
    return f"""\
# This file controls the state of SELinux on the system.
# SELINUX= can take one of these three values:
#     enforcing - SELinux security policy is enforced.
#     permissive - SELinux prints warnings instead of enforcing.
#     disabled - No SELinux policy is loaded.
SELINUX={mode}
# SELINUXTYPE= can take one of these three values:
#     targeted - Targeted processes are protected,
#     minimum - Modification of targeted policy. Only selected processes are protected.
#     mls - Multi Level Security protection.
SELINUXTYPE=targeted
"""


def kubelet_config(resolv_conf: str | None) -> str:
    """What kubeadm (kubespray with NodeLocalDNS) writes; clusterDNS is the node-local cache.
    `resolv_conf` None: no resolvConf line (kubelet's default, /etc/resolv.conf)."""
    text = f"""\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
cgroupDriver: systemd
clusterDNS:
- {LOCAL_DNS_IP}
clusterDomain: cluster.local
healthzBindAddress: 127.0.0.1
healthzPort: 10248
resolvConf: {resolv_conf}
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
"""
    return text if resolv_conf else text.replace("resolvConf: None\n", "")


RESOLVED_SCRIPT = """\
#!/bin/sh
# netops lab stand-in for systemd-resolved's start: the files it keeps in /run (a tmpfs, so
# they exist only once it has started after a boot). resolv.conf lists the upstream servers
# (what kubelet should hand pods), stub-resolv.conf the local stub 127.0.0.53.
set -e
. /etc/netops-lab/resolved.env
mkdir -p /run/systemd/resolve
cat > /run/systemd/resolve/resolv.conf <<EOF
# This is /run/systemd/resolve/resolv.conf managed by man:systemd-resolved(8).
# Do not edit.
#
# This file might be symlinked as /etc/resolv.conf. If you're looking at
# /etc/resolv.conf and seeing this text, you have followed the symlink.
#
# Third party programs should typically not access this file directly, but only
# through the symlink at /etc/resolv.conf.

nameserver $UPSTREAM
search $SEARCH
EOF
cat > /run/systemd/resolve/stub-resolv.conf <<EOF
# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).
# Do not edit.

nameserver 127.0.0.53
options edns0 trust-ad
search $SEARCH
EOF
"""

RESOLVED_UNIT = """\
[Unit]
Description=Network Name Resolution
Documentation=man:systemd-resolved.service(8)
After=systemd-sysctl.service systemd-networkd.service
Before=network.target nss-lookup.target

[Service]
Type=notify
ExecStart=/lib/systemd/systemd-resolved
X-NetopsLab-ExecStart=/bin/sh /etc/netops-lab/resolved
X-NetopsLab-ExecStop=rm -f /run/systemd/resolve/resolv.conf /run/systemd/resolve/stub-resolv.conf

[Install]
WantedBy=multi-user.target
Alias=dbus-org.freedesktop.resolve1.service
"""


# -- the lab's API state, read from its store file -----------------------------------------------
def node_pods(lab: Lab, node: str, app: str | None = None) -> list[dict[str, Any]]:
    """The API's live (not terminating) pods on `node`, of one app (k8s-app or app label)."""
    objects = lab.kube_state()["objects"]
    out = []
    for o in objects:
        labels = o["metadata"].get("labels", {})
        if o.get("kind") != "Pod" or o["spec"].get("nodeName") != node or \
                o["metadata"].get("deletionTimestamp"):
            continue
        if app is None or app in (labels.get("k8s-app"), labels.get("app")):
            out.append(o)
    return out


def _boot_id(lab: Lab, node: str) -> str:
    return lab.node_path(node, "/proc/sys/kernel/random/boot_id").read_text().strip()


def wait_started(lab: Lab, node: str, *, timeout: float = 30,
                 apps: tuple[str, ...] = ("node-local-dns", "kube-proxy")) -> None:
    """Until the lab's kubelet has started `apps`' pods on `node` since its last boot."""
    deadline = time.monotonic() + timeout
    while True:
        boot = _boot_id(lab, node)
        extra = lab.kube_state()["extra"]
        started = extra.get("started", {})
        pods = [p for a in apps for p in node_pods(lab, node, a)]
        if len(pods) >= len(apps) and all(started.get(p["metadata"]["uid"]) == boot
                                          for p in pods):
            return
        if time.monotonic() > deadline:
            raise UserError(f"{node}: the lab's kubelet did not start {', '.join(apps)} within "
                            f"{timeout:g}s (is kubelet active? see supervisor.log)")
        time.sleep(0.2)


def _pidfile(pod: dict[str, Any], container: str) -> str:
    return f"{PODS_RUN}/{pod['metadata']['uid']}.{container}.pid"


def _running(lab: Lab, node: str, pod: dict[str, Any], container: str) -> bool:
    done = lab.node_exec(node, f'kill -0 "$(cat {_pidfile(pod, container)})" 2>/dev/null',
                         check=False)
    return done.returncode == 0


def restart_dead(lab: Lab, node: str) -> None:
    """Start again the node-local-dns and kube-proxy containers that died (what a kubelet does
    for restartPolicy Always): node-cache sets up its link and rules again, kube-proxy its
    chains."""
    wait_started(lab, node)
    for app, container in (("node-local-dns", "node-cache"), ("kube-proxy", "kube-proxy")):
        for pod in node_pods(lab, node, app):
            if not _running(lab, node, pod, container):
                kubelet_restart(lab, node, pod)


def kubelet_restart(lab: Lab, node: str, pod: dict[str, Any]) -> None:
    """Start `pod`'s containers on `node` again, as the lab's kubelet starts them."""
    sh(lab, node, f"{HOOK} {shlex.quote(json.dumps([kubelet_request(pod)]))}")


# -- the healthy baseline ------------------------------------------------------------------------
def healthy_k8s(lab: Lab, node: str) -> None:
    """SELinux permissive (now and in /etc/selinux/config, as kubeadm's install guide leaves
    it); the kubelet's config with resolvConf at systemd-resolved's upstream file and clusterDNS
    at the node-local cache; systemd-resolved (stand-in unit: writes its /run files at each
    start) enabled and running; node-cache and kube-proxy running."""
    env = f"UPSTREAM={lab.net.gateway}\nSEARCH=lab.netops.test\n"
    sh(lab, node, _write(SELINUX_CONFIG, selinux_config("permissive"))
       + f"rm -f {SELINUX_RUN}\n"
       + _write(KUBELET_CONFIG, kubelet_config(RESOLVED_CONF))
       + _write("/etc/netops-lab/resolved", RESOLVED_SCRIPT, "0755")
       + _write("/etc/netops-lab/resolved.env", env)
       + _write("/etc/systemd/system/systemd-resolved.service", RESOLVED_UNIT)
       + "systemctl enable systemd-resolved >/dev/null 2>&1\n"
       + "systemctl start systemd-resolved\n"
       + f"[ -s {RESOLVED_CONF} ] || sh /etc/netops-lab/resolved\n")
    _base_kube_proxy(lab, node)
    restart_dead(lab, node)
    if lab.kube:
        _kubelet_configmap(lab, RESOLVED_CONF)


def _kubelet_configmap(lab: Lab, resolv_conf: str) -> None:
    """Set resolvConf in kube-system/kubelet-config (kubeadm's source of config.yaml)."""
    text = lab.kubectl("-n", "kube-system", "get", "configmap", "kubelet-config", "-o",
                       "jsonpath={.data.kubelet}").stdout
    new = re.sub(r"(?m)^resolvConf:.*$", f"resolvConf: {resolv_conf}", text)
    if new != text:
        lab.kubectl("-n", "kube-system", "patch", "configmap", "kubelet-config", "--type",
                    "merge", "-p", json.dumps({"data": {"kubelet": new}}))


# -- faults ----------------------------------------------------------------------------------------
def _wait_pod(lab: Lab, node: str, app: str, test: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(test(p) for p in node_pods(lab, node, app)):
        if time.monotonic() > deadline:
            raise UserError(f"{node}: the {app} pod did not {what} within {timeout:g}s")
        time.sleep(0.2)


def _init_failed(pod: dict[str, Any]) -> bool:
    return any(s.get("name") == "install-cni" and "terminated" in s.get("state", {})
               and s["state"]["terminated"].get("exitCode") == 1
               for s in pod.get("status", {}).get("initContainerStatuses", []))


def selinux_enforcing(lab: Lab, node: str) -> None:
    # Seed 001 / flannel#709: SELinux Enforcing (now and at boot); flannel's install-cni runs
    # as svirt_lxc_net_t and may not write etc_t /etc/cni/net.d. The node's flannel pod was
    # recreated (an upgrade, a restart): install-cni fails, the config is missing, NotReady.
    wait_started(lab, node, apps=("flannel",))
    sh(lab, node, _write(FLANNEL_CNI_SOURCE, json.dumps(FLANNEL_CONFLIST, indent=2) + "\n")
       + _write(SELINUX_CONFIG, selinux_config("enforcing"))
       + f"mkdir -p {SELINUX_RUN.rsplit('/', 1)[0]} && echo Enforcing > {SELINUX_RUN}\n"
       + "rm -f /etc/cni/net.d/10-flannel.conflist\n")
    lab.kubectl("-n", "kube-flannel", "delete", "pod", "-l", "app=flannel",
            "--field-selector", f"spec.nodeName={node}")
    _wait_pod(lab, node, "flannel", _init_failed, "fail in install-cni")


def resolv_conf_loopback(lab: Lab, node: str) -> None:
    # Seeds 001/004: kubelet hands pods systemd-resolved's stub (nameserver 127.0.0.53), so
    # CoreDNS on this node forwards to itself. Its kube-dns pod, started again here, logs the
    # loop plugin's FATAL line.
    sh(lab, node, _write(KUBELET_CONFIG, kubelet_config(STUB_CONF))
       + f"[ -s {STUB_CONF} ] || sh /etc/netops-lab/resolved\n")
    _kubelet_configmap(lab, STUB_CONF)  # the cluster's kubeadm config says so too
    if node_pods(lab, node, "kube-dns"):
        lab.kubectl("-n", "kube-system", "delete", "pod", "-l", "k8s-app=kube-dns",
                "--field-selector", f"spec.nodeName={node}")


TOO_MANY = """\
# written by a provisioning script: every resolver of every site
nameserver 10.0.0.2
nameserver 10.0.1.2
nameserver 10.0.2.2
nameserver 10.0.3.2
search lab.netops.test
"""


def resolv_conf_too_many(lab: Lab, node: str) -> None:
    # kubernetes/test-infra#15552: more than 3 nameservers; kubelet drops the rest and warns
    # "Nameserver limits were exceeded".
    sh(lab, node, _write("/etc/kubernetes/resolv.conf", TOO_MANY)
       + _write(KUBELET_CONFIG, kubelet_config("/etc/kubernetes/resolv.conf")))


NO_RESOLVED_RESOLV_CONF = """\
# written by the provisioning tool (no systemd-resolved on this image)
nameserver {upstream}
search lab.netops.test
"""


def resolv_conf_stub_symlink(lab: Lab, node: str) -> None:
    # Seed 004 / Ubuntu's default: /etc/resolv.conf is systemd-resolved's symlink to its stub
    # file (nameserver 127.0.0.53); the kubelet was set up without resolvConf (its default,
    # /etc/resolv.conf), so pods with dnsPolicy Default, CoreDNS among them, get the stub. The
    # real upstreams are in /run/systemd/resolve/resolv.conf.
    sh(lab, node, keep_original("/etc/resolv.conf")
       + f"[ -s {STUB_CONF} ] || sh /etc/netops-lab/resolved\n"
       + "ln -sfn ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf\n"
       + _write(KUBELET_CONFIG, kubelet_config(None)))


def resolv_conf_no_resolved(lab: Lab, node: str) -> None:
    # easzlab/kubeasz#1111: a node without systemd-resolved (a minimal image) got the kubelet
    # config of the nodes that run it (resolvConf: /run/systemd/resolve/resolv.conf, kubeadm's
    # choice there): the file does not exist, every pod sandbox fails. Its own /etc/resolv.conf
    # is a plain file with the real upstream: the file kubelet should name.
    sh(lab, node, keep_original("/etc/resolv.conf")
       + "systemctl disable systemd-resolved >/dev/null 2>&1; "
         "systemctl stop systemd-resolved >/dev/null 2>&1\n"
       + "rm -rf /run/systemd/resolve\n"
       + "rm -f /etc/resolv.conf\n"
       + _write("/etc/resolv.conf", NO_RESOLVED_RESOLV_CONF.format(upstream=lab.net.gateway))
       + _write(KUBELET_CONFIG, kubelet_config(RESOLVED_CONF)))


def _stop_container(lab: Lab, node: str, app: str, container: str, signal: str) -> None:
    wait_started(lab, node)
    for pod in node_pods(lab, node, app):
        pidfile = _pidfile(pod, container)
        sh(lab, node, f"""\
pid=$(cat {pidfile} 2>/dev/null) || exit 0
kill -{signal} "$pid" 2>/dev/null || exit 0
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
""")


def nodelocaldns_down(lab: Lab, node: str) -> None:
    # Seed 004: the node's node-cache is gone (it exited and removed its link and rules, as it
    # does on SIGTERM); pods whose resolv.conf names 169.254.25.10 time out on every lookup.
    _stop_container(lab, node, "node-local-dns", "node-cache", "TERM")


def _flush_kube_proxy(ipt: str = "iptables") -> str:
    """Shell that removes kube-proxy's nat jumps and KUBE-* chains from one backend."""
    return f"""\
for hook in PREROUTING OUTPUT; do
  while {ipt} -w -t nat -D $hook -m comment --comment "kubernetes service portals" \\
    -j KUBE-SERVICES 2>/dev/null; do :; done
done
while {ipt} -w -t nat -D POSTROUTING -m comment --comment "kubernetes postrouting rules" \\
  -j KUBE-POSTROUTING 2>/dev/null; do :; done
chains=$({ipt}-save -t nat 2>/dev/null | sed -n 's/^:\\(KUBE-[^ ]*\\) .*/\\1/p')
for c in $chains; do {ipt} -w -t nat -F "$c"; done
for c in $chains; do {ipt} -w -t nat -X "$c"; done
"""


def kube_proxy_rules_missing(lab: Lab, node: str) -> None:
    # Seed 001 "Service cannot be accessed": kube-proxy died and its nat chains were flushed
    # (a firewall reload, `iptables -t nat -F`): Service IPs lead nowhere.
    _stop_container(lab, node, "kube-proxy", "kube-proxy", "KILL")
    sh(lab, node, _flush_kube_proxy())


KUBE_PROXY_BACKEND = "/etc/netops-lab/kube-proxy-iptables"


def kube_proxy_legacy_rules_missing(lab: Lab, node: str) -> None:
    # kubernetes#71305: the kube-proxy image bundles iptables-legacy while the node's iptables
    # is nf_tables; kube-proxy died and its (legacy) nat chains were flushed. Restarting it
    # brings its rules back in the legacy tables, where `iptables` on the node never looks.
    _stop_container(lab, node, "kube-proxy", "kube-proxy", "KILL")
    sh(lab, node, _write(KUBE_PROXY_BACKEND, "legacy\n") + _flush_kube_proxy()
       + _flush_kube_proxy("iptables-legacy"))


def _base_kube_proxy(lab: Lab, node: str) -> None:
    """kube-proxy on the node's own iptables: a legacy kube-proxy (the fault above) is stopped
    and its legacy rules go; `restart_dead` then starts it on the node's backend."""
    sh(lab, node, f"""\
if [ -e {KUBE_PROXY_BACKEND} ]; then
  rm -f {KUBE_PROXY_BACKEND}
  for f in {PODS_RUN}/*.kube-proxy.pid; do
    [ -e "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
  done
  sleep 0.2
fi
""" + _flush_kube_proxy("iptables-legacy"))


K8S_FAULTS: tuple[Fault, ...] = (
    Fault("selinux-enforcing", "SELinux Enforcing now and in /etc/selinux/config; flannel's "
          "install-cni is denied writing /etc/cni/net.d (Init:Error, no CNI config)",
          "selinux-cni-install", selinux_enforcing),
    Fault("resolv-conf-loopback", "kubelet's resolvConf is systemd-resolved's stub "
          "(nameserver 127.0.0.53): CoreDNS loops", "fix-node-resolv-conf", resolv_conf_loopback),
    Fault("resolv-conf-too-many-nameservers", "kubelet's resolvConf lists 4 nameservers "
          "(limit 3)", "fix-node-resolv-conf", resolv_conf_too_many),
    Fault("resolv-conf-stub-symlink", "/etc/resolv.conf is systemd-resolved's symlink to its "
          "stub (127.0.0.53) and kubelet uses it (no resolvConf); the upstreams are in "
          "/run/systemd/resolve/resolv.conf", "fix-node-resolv-conf", resolv_conf_stub_symlink),
    Fault("resolv-conf-no-resolved", "no systemd-resolved on the node, but kubelet's resolvConf "
          "names its /run/systemd/resolve/resolv.conf (missing); /etc/resolv.conf has the "
          "upstream", "fix-node-resolv-conf", resolv_conf_no_resolved),
    Fault("nodelocaldns-down", "node-cache exited: no nodelocaldns link, NOTRACK rules, health "
          "or answers on 169.254.25.10", "check-nodelocaldns", nodelocaldns_down),
    Fault("kube-proxy-rules-missing", "kube-proxy dead and its nat KUBE-* chains flushed",
          "check-kube-proxy-rules", kube_proxy_rules_missing),
    Fault("kube-proxy-legacy-rules-missing", "kube-proxy's image writes iptables-legacy "
          "(the node's iptables is nf_tables); it died and its legacy nat chains were flushed",
          "check-kube-proxy-rules", kube_proxy_legacy_rules_missing),
)
