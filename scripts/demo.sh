#!/usr/bin/env bash
# Install what is needed, build a lab of real sshd nodes, run netops against it, tear it down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export NETOPS_LAB_DIR="${NETOPS_LAB_DIR:-$PWD/.netops-lab}"
export NETOPS_INVENTORY="$NETOPS_LAB_DIR/inventory.yaml"
trap 'netops lab down >/dev/null 2>&1 || true' EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step netops lab up --nodes 6
step netops inventory
step netops exec --nodes all -- 'hostname; sysctl -n net.ipv4.ip_forward'
