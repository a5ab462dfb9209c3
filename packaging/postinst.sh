#!/bin/sh
# Create the state tree and turn the timer on (idempotent: an upgrade
# re-runs it and changes only what differs). The units come with the
# package in /lib/systemd/system; `jeagent init` sees them and writes none.
set -e
if [ "$1" = configure ] || [ "$1" = 1 ] || [ "$1" = 2 ]; then
  if [ -d /run/systemd/system ]; then
    jeagent init
  else
    jeagent init --no-systemd
  fi
fi
