#!/bin/sh
# A server that tries to drive the user's terminal through jepush: every
# command's output carries escape sequences (OSC 52 writes the clipboard,
# CSI moves the cursor and erases lines, OSC 0 sets the window title, a
# lone C1 CSI byte), in plain output, in JSON fields and in the last line
# of a failure. Arguments: [--root DIR] VERB ...
[ "$1" = "--root" ] && shift 2
E=$(printf '\033')
B=$(printf '\007')
C1=$(printf '\233')
case "$1" in
status)
  printf '{"apps":[{"app":"shop","env":"dev","backoff":{"x":"\302\2332J\177\233"},"current_version":"0bc3c8a5baa5%s[2K","recent_failed_deployments":[{"version":"7c3e92c0ab12","fail_date":"2026-01-01T00:00:00Z","reason":"npm failed \\u001b]52;c;Y3VybCBldmlsfHNo\\u0007 \\u009b31m"}]}]}\n' "" ;;
ps)
  printf '{"processes":[{"name":"web\\u001b[1A\\u001b[2Kfake","state":"active\\u001b]0;pwned\\u0007","restarts":0}]}\n' ;;
releases)
  printf '{"releases":[{"version":"7c3e92c0ab12","date":"2026-01-01T00:00:00Z","by":"mallory\\u001b[2K","result":"failed","reason":"npm failed \\u001b]52;c;Y3VybCBldmlsfHNo\\u0007","on_server":true}]}\n' ;;
logs|config)
  printf 'line one %s]52;c;Y3VybCBldmlsfHNo%s\n' "$E" "$B"
  printf 'line two %s[1A%s[2Kforged line %s31m\n' "$E" "$E" "$C1"
  printf 'stderr %s]0;title%s\n' "$E" "$B" >&2 ;;
*)
  printf 'progress %s[2K%s[1A\n' "$E" "$E" >&2
  printf 'deploy failed: %s]52;c;Y3VybCBldmlsfHNo%s%s[2K\n' "$E" "$B" "$E" >&2
  exit 1 ;;
esac
