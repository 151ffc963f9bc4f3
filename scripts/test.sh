#!/usr/bin/env bash
# Install what is needed (Debian packages: sshd, etcd, iptables, CNI plugins, PostgreSQL...;
# Python packages), then run the whole test suite (unit, contract and lab tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Everything a test needs was installed above, so here a skipped test is a failure.
NETOPS_REQUIRE_ALL=1 python3 -m pytest -q -p no:cacheprovider "$@"
