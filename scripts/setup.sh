#!/usr/bin/env bash
# Install everything netops, its lab and its tests need on a Debian machine (run as root).
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(openssh-server openssh-client iproute2 iptables etcd-server etcd-client
      containernetworking-plugins conntrack curl dnsutils procps kmod util-linux coreutils
      prometheus prometheus-node-exporter chromium
      postgresql sudo)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The real kubectl drives the lab's Kubernetes API stand-in. Debian packages it as
# kubernetes-client; a machine with the Kubernetes or Google Cloud apt repository has kubectl.
if ! command -v kubectl >/dev/null; then
  echo "installing kubectl"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubectl >/dev/null \
    2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    kubernetes-client >/dev/null
fi
# Fail here, not as skipped tests later, if a tool the lab and the tests run is still missing.
for tool in /usr/sbin/sshd ssh-keygen etcd etcdctl ip bridge iptables conntrack unshare nsenter \
            runuser flock kubectl /usr/lib/cni/host-local /usr/lib/postgresql/*/bin/pg_ctl \
            prometheus promtool prometheus-node-exporter chromium; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is missing after apt-get" >&2; exit 1; }
done
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[test]"
