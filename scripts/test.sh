#!/usr/bin/env bash
# Every test: installs what is missing, then lint, unit and integration tests
# (race detector on), the end-to-end tests on real Debian servers (root:
# systemd-nspawn, docs/lab.md), the cross builds, and the reliability suite
# with each fuzzer bounded (docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH=/usr/local/go/bin:$PATH
make test
make e2e
make cross
FUZZTIME=${FUZZTIME:-20s} make reliability
