#!/bin/sh
# On removal, stop the timer; /var/cloud (the apps and their state) stays.
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl disable --now jeagent-rollforward.timer || true
  systemctl stop jeagent-rollforward.service || true
fi
