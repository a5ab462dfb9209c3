#!/usr/bin/env bash
# The README's main job: set up, build, boot a fresh Debian server (a
# systemd-nspawn container: docs/lab.md), `jeagent init` on it, `jepush
# examples/hello` to it over SSH, and print the URL where the app answers.
# On a terminal the server stays up until Ctrl-C, so you can open the URL.
#
# Without root (no containers), it deploys to a local agent instead, under
# $DEMO_ROOT (default /tmp/jecloud-demo): the release is unpacked and live in
# the agent's state, but nothing serves it (that needs systemd).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH=$PWD/bin:/usr/local/go/bin:$PATH

echo "== building bin/jeagent and bin/jepush"
make -s build

if [ "$(id -u)" = 0 ]; then
  hold=0
  [ -t 0 ] && [ -t 1 ] && hold=1
  echo "== booting a Debian server and deploying examples/hello to it (the first run builds the server image: ~2 min)"
  JECLOUD_E2E=1 JECLOUD_DEMO_HOLD=$hold go test -tags e2e -count=1 -run '^TestDemo$' -v ./e2e/ 2>&1 |
    grep -v -E '^(=== RUN|--- PASS|PASS$|ok  )' | grep -v '^        '
  exit "${PIPESTATUS[0]}"
fi

root=${DEMO_ROOT:-/tmp/jecloud-demo}
echo "== not root: deploying to a local agent in $root instead (no systemd: the app is not started)"
jeagent --root "$root" init --no-systemd
jepush examples/hello demo --local --root "$root"
echo "== the same tree again: nothing to upload"
jepush examples/hello demo --local --root "$root"
jeagent --root "$root" status
echo "hello/demo is live in $(readlink -f "$root/hello/demo/source/versions/current")"
