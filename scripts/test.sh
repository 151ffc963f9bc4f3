#!/usr/bin/env bash
# Install what is needed, then run the whole test suite (unit, contract and lab tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m pytest -q -p no:cacheprovider "$@"
