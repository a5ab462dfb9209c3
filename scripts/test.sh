#!/usr/bin/env bash
# Every test: installs what is missing, then lint, unit and integration tests
# (race detector on), the cross builds, and a bounded fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH=/usr/local/go/bin:$PATH
make test
make cross
FUZZTIME=${FUZZTIME:-20s} make fuzz
