#!/usr/bin/env bash
# Install what is needed (Debian packages: sshd, etcd, iptables, CNI plugins, PostgreSQL...;
# Python packages), then run the whole test suite (unit, contract and lab tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Everything a test needs was installed above, so here a skipped test is a failure.
# Three workers, one module each at a time (a module's lab is its own): the lab tests mostly
# wait on nodes, so this about halves the wall time on 2 cores. NETOPS_TEST_WORKERS=0 runs
# them in this process, one after another.
NETOPS_REQUIRE_ALL=1 python3 -m pytest -q -p no:cacheprovider \
    -n "${NETOPS_TEST_WORKERS:-3}" --dist loadfile "$@"
