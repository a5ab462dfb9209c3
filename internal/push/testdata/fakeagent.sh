#!/bin/sh
# A stand-in for jeagent, for tests: it implements has, receive, deploy,
# status, rollback, ps:scale, logs, config --json, destroy and (recording them only) the front
# door's domains and maintenance verbs as the agent's command contract says, keeping
# its state in files under --root. Files that steer it:
#   ROOT/fail      deploy fails with its content as the reason
#   ROOT/full      receive fails with "no space left on device"
#   ROOT/slow      deploy sleeps that many seconds before going live
#   ROOT/protocol  has states this protocol version instead of 1 ("none":
#                  states none, as agents before protocol 1)
#   ROOT/taken     domains:add fails with its content as the reason
# Every call is appended to ROOT/calls.log.
set -u
root=/var/cloud
if [ "${1:-}" = "--root" ]; then root=$2; shift 2; fi
cmd=${1:-}; shift
mkdir -p "$root"
echo "$cmd $*" >> "$root/calls.log"
app=${1:-}; env=${2:-}
versions=$root/$app/$env/source/versions
if [ "$app" = "--help" ]; then
	echo "OPTIONS:"; [ "$cmd" = deploy ] && echo "   --by USER@HOST   who asks for it"
	exit 0
fi
case $cmd in
manifest)
	echo "fake agent: no live version to compare with" >&2; exit 3 ;;
has)
	proto=1
	[ -f "$root/protocol" ] && proto=$(cat "$root/protocol")
	[ "$proto" = none ] || echo "jeagent-protocol: $proto"
	live=$(cat "$root/$app/$env/current" 2>/dev/null)
	[ -n "$live" ] && [ -f "$versions/$live.tar.zst" ] && echo "jeagent-live: $live"
	[ -f "$versions/$3.tar.zst" ] && exit 0
	exit 3 ;;
receive)
	id=$3
	mkdir -p "$versions"
	tmp=$versions/.$id.tar.zst.tmp.$$
	cat > "$tmp"
	if [ -f "$root/full" ]; then rm -f "$tmp"; echo "receive $id: write $tmp: no space left on device" >&2; exit 1; fi
	if command -v zstd >/dev/null 2>&1; then
		sum=$(zstd -dc < "$tmp" | sha256sum | cut -c1-12)
		if [ "$sum" != "$id" ]; then rm -f "$tmp"; echo "receive $id: the bundle's hash is $sum, not $id" >&2; exit 1; fi
	fi
	mv "$tmp" "$versions/$id.tar.zst" ;;
deploy|rollback)
	if [ "$cmd" = rollback ]; then id=$(cat "$root/$app/$env/previous" 2>/dev/null || echo none); else id=$3; fi
	case " $* " in *" --wait "*) ;; *) echo "fake agent: --wait missing" >&2; exit 2;; esac
	echo "$id" > "$root/$app/$env/pending"
	echo "deployment of $id recorded"
	echo "extracting $id"
	if [ -f "$root/slow" ]; then sleep "$(cat "$root/slow")"; fi
	if [ -f "$root/fail" ]; then
		echo "hook node: npm ci" >&2
		echo "deploy of $id failed: $(cat "$root/fail")" >&2
		# As the agent: no longer pending, recorded as failed.
		rm -f "$root/$app/$env/pending"
		printf '{"version":"%s","fail_date":"2024-05-01T12:00:00Z","reason":"%s"}' "$id" "$(cat "$root/fail")" > "$root/$app/$env/failed"
		exit 1
	fi
	cp "$root/$app/$env/current" "$root/$app/$env/previous" 2>/dev/null
	echo "$id" > "$root/$app/$env/current"
	rm -f "$root/$app/$env/pending"
	echo "$id is live" ;;
status)
	cur=$(cat "$root/$app/$env/current" 2>/dev/null)
	dep=null
	if [ -f "$root/$app/$env/pending" ]; then dep="{\"version\":\"$(cat "$root/$app/$env/pending")\",\"state\":\"extracting\",\"start_date\":\"2024-05-01T12:00:00Z\"}"; fi
	case " $* " in *" --follow "*) echo "following"; exit 0;; esac
	failed='{"version":"7c3e92c0ab12","fail_date":"2024-05-01T11:00:00Z","reason":"out of disk space"}'
	[ -f "$root/$app/$env/failed" ] && failed=$(cat "$root/$app/$env/failed")
	printf '{"apps":[{"app":"%s","env":"%s","current_version":"%s","deployment":%s,"recent_failed_deployments":[%s],"backoff":null,"error":""}]}\n' "$app" "$env" "$cur" "$dep" "$failed" ;;
ps:scale)
	echo "scale recorded: $*" ;;
config)
	# --json only: the vars in ROOT/APP/ENV/config.json, else none.
	cat "$root/$app/$env/config.json" 2>/dev/null || echo '{}' ;;
destroy)
	[ -d "$root/$app/$env" ] || { echo "$app/$env is not on this server: nothing to destroy" >&2; exit 3; }
	rm -rf "${root:?}/$app/$env"
	echo "$app/$env: destroyed" ;;
domains|domains:add|domains:remove|maintenance:on|maintenance:off)
	if [ "$cmd" = domains:add ] && [ -f "$root/taken" ]; then echo "domains:add: $(cat "$root/taken")" >&2; exit 1; fi
	echo "$cmd recorded: $*" ;;
logs)
	echo "May 01 12:00:00 web1 node[123]: listening on :3000" ;;
*)
	echo "fake agent: unknown command $cmd" >&2; exit 2 ;;
esac
