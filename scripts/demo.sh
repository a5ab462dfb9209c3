#!/usr/bin/env bash
# The main job on one machine: set up, build, deploy examples/hello to a local
# jeagent (state under $DEMO_ROOT, default /tmp/jecloud-demo), push it again
# (nothing is uploaded the second time), and show where it stands.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH=$PWD/bin:/usr/local/go/bin:$PATH
root=${DEMO_ROOT:-/tmp/jecloud-demo}

echo "== building bin/jeagent and bin/jepush"
make -s build

echo "== a local server: jeagent init --root $root"
jeagent --root "$root" init

echo "== jepush examples/hello demo --local --root $root"
jepush examples/hello demo --local --root "$root"

echo "== the same tree again: nothing to upload"
jepush examples/hello demo --local --root "$root"

echo "== jeagent status"
jeagent --root "$root" status
live=$(readlink -f "$root/hello/demo/source/versions/current")
echo
echo "hello/demo is live: release $(basename "$live") in $live"
echo "(state: $root/hello/demo/app.json; log: $root/sys/logs/rollforward.log)"
