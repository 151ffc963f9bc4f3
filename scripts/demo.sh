#!/usr/bin/env bash
# Install what is needed, build a lab of real sshd nodes, break some, find and fix them with
# netops, then tear the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export NETOPS_LAB_DIR="${NETOPS_LAB_DIR:-$PWD/.netops-lab}"
export NETOPS_INVENTORY="$NETOPS_LAB_DIR/inventory.yaml"
export NETOPS_JOURNAL="${NETOPS_JOURNAL:-$NETOPS_LAB_DIR/journal.db}"
trap 'netops lab down >/dev/null 2>&1 || true' EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
# Twelve healthy nodes (kubelet, calico, flannel, kube-proxy, NodeLocalDNS; a Kubernetes API
# stand-in that the real kubectl talks to), then the seed stories' faults: chick4 lost its
# FORWARD accepts when docker restarted (seed 001), chick5 has ip_forward off now, chick6 a
# later sysctl.d file that turns it off at the next boot, and calico-node went silent on
# chick11 after an upgrade (seed 000).
step netops lab up --nodes 12 --healthy \
  --faults forward-drop@chick4,ip-forward-off@chick5,ip-forward-boot-override@chick6,calico-silent@chick11
export KUBECONFIG="$NETOPS_LAB_DIR/kubeconfig" KUBECACHEDIR="$NETOPS_LAB_DIR/kube/cache"
step netops inventory
step netops exec --nodes all -- 'hostname; sysctl -n net.ipv4.ip_forward'
step kubectl get nodes
step netops diagnose --evidence || true
# The headline: calico-node looks Running on chick11 but has been silent for two hours.
step netops run fix-calico --nodes chick11,chick12 --dry-run
step netops run fix-calico --nodes chick11,chick12 --var settle=10s --var fresh_within=5s \
  --pause 5s --yes
step kubectl -n kube-system get pods -l k8s-app=calico-node -o wide
step netops run check-ip-forward --nodes chick4,chick5,chick6 --dry-run
step netops run check-ip-forward --nodes chick4,chick5,chick6 --batch-size 1,50% --max-fail 0 --yes
step netops run iptables-forward-accept --nodes chick4 --yes
step netops lab reboot chick6
step netops diagnose
step netops history
run_id=$(netops history --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][1]["run_id"])')
step netops report "$run_id"
