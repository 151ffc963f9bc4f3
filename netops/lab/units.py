"""Unit files the lab ships into every node's /lib/systemd/system (read-only overlay over the
host's). The systemctl stand-in runs `X-NetopsLab-ExecStart=` / `-ExecStop=` lines when a unit
starts or stops and asks `X-NetopsLab-IsActive=` (if present) whether it runs; real systemd
would ignore these keys. Add a unit here and every new lab knows it.
"""

from __future__ import annotations

_KUBE = "https://kubernetes.io/docs/"
DOCKER_IPTABLES = "/etc/netops-lab/docker-iptables"
"""Names the iptables backend the docker stand-in writes (`legacy`, `nft`); absent: the
node's `iptables`."""
_DOCKER_START = "; ".join((
    f"b=$(cat {DOCKER_IPTABLES} 2>/dev/null)",
    "case $b in legacy|nft) ipt=/usr/sbin/iptables-$b ;; *) ipt=/usr/sbin/iptables ;; esac",
    "$ipt -w -N DOCKER 2>/dev/null", "$ipt -w -N DOCKER-USER 2>/dev/null",
    "$ipt -w -P FORWARD DROP"))

UNITS: dict[str, str] = {
    "docker.service": f"""\
[Unit]
Description=Docker Application Container Engine
Documentation=https://docs.docker.com
After=network-online.target containerd.service
Wants=network-online.target containerd.service

[Service]
Type=notify
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
# What dockerd does at start that runbooks care about: Docker >= 1.13 sets FORWARD to DROP
# (moby/moby#28257), next to its DOCKER and DOCKER-USER chains (their jump rules are left
# out: nothing forwards through docker0 in a lab). Drop-ins' ExecStartPost= lines run after
# it. It writes with the node's `iptables`, or with the backend named in the file at
# {DOCKER_IPTABLES} (a docker built or bundled with another iptables).
X-NetopsLab-ExecStart={_DOCKER_START}

[Install]
WantedBy=multi-user.target
""",
    "containerd.service": """\
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target

[Service]
ExecStart=/usr/bin/containerd

[Install]
WantedBy=multi-user.target
""",
    "kubelet.service": f"""\
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation={_KUBE}
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
""",
    "flanneld.service": """\
[Unit]
Description=Flannel overlay network agent
Documentation=https://github.com/flannel-io/flannel
After=network-online.target etcd.service
Before=docker.service

[Service]
ExecStart=/usr/bin/flanneld

[Install]
WantedBy=multi-user.target
""",
    "kube-proxy.service": f"""\
[Unit]
Description=Kubernetes Kube-Proxy Server
Documentation={_KUBE}
After=network.target

[Service]
ExecStart=/usr/bin/kube-proxy

[Install]
WantedBy=multi-user.target
""",
    # Shadows the host's ssh.service so that systemctl start/stop/is-active act on the node's
    # real sshd (its listener only: running sessions survive a stop, as on a real host).
    "ssh.service": """\
[Unit]
Description=OpenBSD Secure Shell server
Documentation=man:sshd(8) man:sshd_config(5)
After=network.target auditd.service

[Service]
ExecStart=/usr/sbin/sshd -D $SSHD_OPTS
X-NetopsLab-ExecStart=/usr/sbin/sshd -E /var/log/sshd.log
X-NetopsLab-ExecStop=kill "$(cat /run/sshd.pid)"
X-NetopsLab-IsActive=kill -0 "$(cat /run/sshd.pid)"
KillMode=process
RuntimeDirectory=sshd

[Install]
WantedBy=multi-user.target
Alias=sshd.service
""",
}
