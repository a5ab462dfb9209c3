#!/usr/bin/env bash
# `make bench`: JeCloud's performance figures, each measured side by side
# with its reference in the same run (docs/benchmarks.md says what each row
# means and how to read it).
#
#   1  jepush bundle of Go's source tree         vs tar | tee >(sha256sum) | zstd -3 -T0
#   2  idle roll-forward tick, 1/20/200 app envs  vs /bin/true (CPU, peak RSS, disk writes)
#   3  server apply of a 100 MB bundle            vs tar -I zstd -xf; peak RSS for 100 MB vs 1 GB
#   4  jepush of an unchanged tree over sshd      vs ssh HOST true; bytes sent; one-file change
#   5  bundle time against tree size 1 MB..1 GB   vs the same C pipeline
#   delta  one-line changes, a renamed directory     vs git push over the same sshd
#
# Settings (environment):
#   BENCH_DIR   work directory (default /tmp/jecloud-bench; needs ~8 GB with the 1 GB trees)
#   BENCH_RUNS  hyperfine runs of the main rows (default 5)
#   BENCH_1G    1: always run the 1 GB trees, 0: never, auto (default): when the disk has room
#   BENCH_KEEP  1: keep the trees and the state trees afterwards (and reuse the trees next time)
#   BENCH_GOSRC the large real tree of row 1 and 4 (default: $(go env GOROOT)/src)
#
# The results go to $BENCH_DIR/results: table.md (the table), growth.md,
# machine.md, log.txt, and raw/ (hyperfine's JSON and the rest).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
REPO=$PWD
GO=${GO:-go}
W=${BENCH_DIR:-/tmp/jecloud-bench}
RUNS=${BENCH_RUNS:-5}
BIG=${BENCH_1G:-auto}
KEEP=${BENCH_KEEP:-0}
TICKS=${BENCH_TICKS:-100}

OUT=$W/results
RAW=$OUT/raw
T=$W/work
BIN=$W/bin
A=$BIN/jeagent
P=$BIN/jepush
J=$BIN/jebench

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v zstd >/dev/null || need+=(zstd)
[ -x /usr/bin/time ] || need+=(time)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v flock >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing ${need[*]}"
		apt-get install -y -q "${need[@]}" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
	else
		die "missing: ${need[*]} (apt-get install -y ${need[*]}, as root)"
	fi
fi

# Nothing is deleted while measuring: ext4 skips the inodes freed in the last
# minutes when it allocates new ones (recently_deleted()), which made file
# creation 3 to 4 times slower right after an `rm -rf` of a large tree here.
# What a run replaces goes to $TRASH, emptied when the run ends.
TRASH=$W/trash
mkdir -p "$TRASH"
trash() { local p; for p in "$@"; do [ ! -e "$p" ] || mv "$p" "$TRASH/$(date +%s%N)-${p##*/}"; done; }
trash "$OUT" "$BIN" "$T/roots" "$T/ssh" "$T/out"
mkdir -p "$RAW" "$BIN" "$T/trees" "$T/roots" "$T/ssh" "$T/out"
exec > >(tee "$OUT/log.txt") 2>&1

PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	if [ "$KEEP" != 1 ]; then rm -rf "$T"; fi
	rm -rf "$TRASH"
}
trap cleanup EXIT

say "building (make build BIN=$BIN, bench/jebench, bench/gonop)"
make -s build BIN="$BIN" GO="$GO" >/dev/null
CGO_ENABLED=0 $GO build -trimpath -o "$J" ./bench/jebench
CGO_ENABLED=0 $GO build -trimpath -ldflags '-s -w' -o "$BIN/gonop" ./bench/gonop

# --- the machine -------------------------------------------------------------
dev=$(df --output=source "$W" | tail -1)
{
	echo "| | |"
	echo "|---|---|"
	hv=$(lscpu | sed -n 's/^Hypervisor vendor: *//p')
	echo "| CPU | $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)${hv:+ ($hv guest)} |"
	echo "| memory | $(free -g | awk '/^Mem:/ {print $2}') GiB |"
	echo "| disk | $dev, $(df --output=fstype "$W" | tail -1) ($(findmnt -no OPTIONS -T "$W" 2>/dev/null || echo '?')), $(df -h --output=size "$W" | tail -1 | tr -d ' ') |"
	echo "| kernel | $(uname -r) |"
	echo "| tools | $($GO version | cut -d' ' -f3), $(hyperfine --version), zstd $(zstd -V | grep -o 'v[0-9.]*'), $(tar --version | head -1), $(ssh -V 2>&1 | cut -d, -f1) |"
	echo "| load when the run started | $(cut -d' ' -f1-3 /proc/loadavg) |"
	mkdir -p "$T/create"
	t0=$(date +%s%N)
	(cd "$T/create" && seq 1000 | xargs touch)
	t1=$(date +%s%N)
	trash "$T/create"
	echo "| creating a file in $W (1,000 \`touch\`es) | $(awk -v n=$((t1 - t0)) 'BEGIN { printf "%.0f µs", n / 1000 / 1000 }') each |"
	eval "$("$J" pagefault)"
	echo "| the first touch of a fresh page of memory (a page fault; \`jebench pagefault\`, median of 9 × 1,000) | $pagefault_us µs |"
} >"$OUT/machine.md"
cat "$OUT/machine.md"

# --- helpers -----------------------------------------------------------------
TSV=$OUT/results.tsv
: >"$TSV"
# row ID WHAT REFERENCE REF_VALUE VALUE UNIT CHECK TARGET
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TSV"; }
# hf NAME hyperfine-args...: runs hyperfine, keeps its JSON, sets NAME0_median_ms...
hf() {
	local name=$1
	shift
	hyperfine --style basic --export-json "$RAW/$name.json" "$@" >&2
	eval "$("$J" hf -prefix "$name" "$RAW/$name.json")"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
sizeof() { stat -c %s "$1"; }
# settle ROOT: wait until no roll-forward runs and none has work left.
settle() {
	local r=$1 i
	for i in $(seq 100); do
		flock "$r/sys/pids/rollforward.pid" true
		[ -z "$("$A" --root "$r" rollforward --dry-run 2>/dev/null)" ] && break
		"$A" --root "$r" rollforward --quiet >/dev/null 2>&1 || true
	done
	flock "$r/sys/pids/rollforward.pid" true
}

# --- the trees ---------------------------------------------------------------
SIZES="1M 10M 100M"
if [ "$BIG" = auto ]; then
	avail=$(df --output=avail -B1G "$W" | tail -1)
	if [ "$avail" -ge 10 ]; then BIG=1; else BIG=0; echo "1 GB trees skipped: ${avail} GiB free in $W, 10 needed" >&2; fi
fi
[ "$BIG" = 1 ] && SIZES="$SIZES 1G"
say "generating trees: $SIZES (bench/jebench gentree; kept between runs with BENCH_KEEP=1)"
for s in $SIZES; do
	d=$T/trees/$s
	if [ ! -e "$d.done" ]; then
		trash "$d"
		"$J" gentree -size "$s" -seed 1 "$d"
		touch "$d.done"
	fi
done
GOSRC=${BENCH_GOSRC:-$($GO env GOROOT)/src}
go_files=$(find "$GOSRC" -type f | wc -l)
go_bytes=$(find "$GOSRC" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')

# --- 1: jepush bundle of Go's source tree ---------------------------------------
section_1() {
	say "1: jepush bundle of $GOSRC ($go_files files, $(mib "$go_bytes")) vs tar | tee >(sha256sum) | zstd -3 -T0"
	hf gotree --warmup 1 --runs "$RUNS" --shell=bash \
		-n "jepush bundle" "$P bundle $GOSRC -o $T/out/go.tar.zst" \
		-n "tar | sha256sum | zstd" "tar -C $GOSRC -cf - . | tee >(sha256sum >&2) | zstd -3 -T0 -q > $T/out/go-c.tar.zst"
	GO_ID=$("$P" bundle "$GOSRC" -o "$T/out/go.tar.zst")
	go_zst=$(sizeof "$T/out/go.tar.zst")
	row 1 "jepush bundle of Go's source tree ($go_files files, $(mib "$go_bytes")), warm cache" \
		'`tar -cf - . | tee >(sha256sum >&2) | zstd -3 -T0`' "$gotree1_median_ms" "$gotree0_median_ms" ms "ratio<=1" "no slower (≤ 1.00x)"
	echo "bundle sizes: jepush $(mib "$go_zst"), C pipeline $(mib "$(sizeof "$T/out/go-c.tar.zst")")" >&2
}

# --- 5: bundle time against tree size -----------------------------------------------
section_5() {
	say "5: bundle time against tree size ($SIZES)"
	{
		echo "| tree | files | content | bundle | jepush bundle | C pipeline | ratio | jepush MB/s |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	} >"$OUT/growth-bundle.md"
	for s in $SIZES; do
		d=$T/trees/$s
		case $s in 1M | 10M) runs=10 warm=2 ;; 1G) runs=3 warm=1 ;; *) runs=$RUNS warm=1 ;; esac
		hf "size$s" --warmup "$warm" --runs "$runs" --shell=bash \
			-n "jepush bundle" "$P bundle $d -o $T/out/b$s.tar.zst" \
			-n "tar | sha256sum | zstd" "tar -C $d -cf - . | tee >(sha256sum >&2) | zstd -3 -T0 -q > $T/out/c$s.tar.zst"
		"$P" bundle "$d" -o "$T/out/b$s.tar.zst" >"$T/out/b$s.id"
		files=$(find "$d" -type f | wc -l)
		content=$(find "$d" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
		eval "jm=\$size${s}0_median_ms cm=\$size${s}1_median_ms"
		echo "| $s | $files | $(mib "$content") | $(mib "$(sizeof "$T/out/b$s.tar.zst")") | $(calc "$jm/1000") s | $(calc "$cm/1000") s | $(calc "$jm/$cm")x | $(awk -v b="$content" -v t="$jm" 'BEGIN { printf "%.0f", b / 1e6 / (t / 1000) }') |" >>"$OUT/growth-bundle.md"
		row "5 ($s)" "jepush bundle of a generated $s tree ($files files)" "the same C pipeline" "$cm" "$jm" ms - "(growth: no target)"
	done
	cat "$OUT/growth-bundle.md"
}

# --- 2: the idle tick --------------------------------------------------------------
section_2() {
	say "2: idle roll-forward tick with 1, 20, 200 app environments vs /bin/true"
	# mkroot N: a state tree with N app environments, each with a small deployed release.
	mkroot() {
		local n=$1 r=$T/roots/tick$1 i app env src id
		"$A" --root "$r" init >/dev/null
		for i in $(seq 0 $((n - 1))); do
			app=app$((i / 10)) env=env$((i % 10))
			src=$T/roots/src/$app-$env
			mkdir -p "$src/public"
			printf '<h1>%s %s</h1>\n' "$app" "$env" >"$src/public/index.html"
			printf 'console.log("%s %s")\n' "$app" "$env" >"$src/server.js"
			id=$("$P" bundle "$src" -o "$src.tar.zst")
			"$A" --root "$r" receive "$app" "$env" "$id" <"$src.tar.zst" >/dev/null
			"$A" --root "$r" deploy "$app" "$env" "$id" >/dev/null
		done
		settle "$r"
		local live
		live=$(find "$r" -path '*/source/versions/current' | wc -l)
		[ "$live" = "$n" ] || die "tick root $r: $live of $n app environments live"
	}
	{
		echo "| what | CPU (user+sys), median | CPU, min | wall, median | peak RSS | bytes written | inodes changed |"
		echo "|---|---:|---:|---:|---:|---:|---:|"
	} >"$OUT/growth-tick.md"
	tickline() { # NAME PREFIX CHANGED
		eval "local cpu=\$${2}cpu_ms min=\$${2}cpu_ms_min wall=\$${2}wall_ms rss=\$${2}maxrss_kb wb=\$${2}write_bytes"
		echo "| $1 | $cpu ms | $min ms | $wall ms | $(calc "$rss/1024") MiB | $wb | $3 |" >>"$OUT/growth-tick.md"
	}
	eval "$("$J" rusage -n "$TICKS" -warmup 3 -prefix true_ -- /bin/true)"
	tickline '`/bin/true`' true_ -
	eval "$("$J" rusage -n "$TICKS" -warmup 3 -prefix nop_ -- "$BIN/gonop")"
	tickline 'an empty Go program (bench/gonop)' nop_ -
	for n in 1 20 200; do
		mkroot "$n"
		r=$T/roots/tick$n
		if [ "$n" = 1 ]; then
			eval "$("$J" rusage -n "$TICKS" -warmup 3 -prefix has_ -- "$A" --root "$r" has app0 env0 "$("$P" bundle "$T/roots/src/app0-env0")")"
			tickline '`jeagent has` (start-up, two stats)' has_ -
		fi
		eval "$("$J" snapshot -prefix before_ -o "$RAW/tick$n.before" "$r")"
		# What the timer runs (jeagent-tick), then the full agent's own idle run.
		eval "$("$J" rusage -n "$TICKS" -warmup 3 -prefix "tick${n}_" -- "$BIN/jeagent-tick" --root "$r" --agent "$A")"
		eval "$("$J" rusage -n "$TICKS" -warmup 3 -prefix "full${n}_" -- "$A" --root "$r" rollforward)"
		eval "$("$J" snapshot -prefix after_ -o "$RAW/tick$n.after" "$r")"
		changed=0
		if [ "$before_sha" != "$after_sha" ]; then
			changed=$(diff "$RAW/tick$n.before" "$RAW/tick$n.after" | grep -c '^>' || true)
			echo "tick with $n app environments changed the tree:" >&2
			diff "$RAW/tick$n.before" "$RAW/tick$n.after" >&2 || true
		fi
		atime=same
		[ "$before_atime_sha" = "$after_atime_sha" ] || atime=changed
		eval "tick${n}_changed=$changed"
		tickline "\`jeagent-tick\` (the timer's run), idle, $n app environment$([ "$n" = 1 ] || echo s) ($before_entries inodes; atimes $atime)" "tick${n}_" "$changed"
		tickline "\`jeagent rollforward\` (the full agent), idle, $n app environment$([ "$n" = 1 ] || echo s)" "full${n}_" "$changed"
	done
	cat "$OUT/growth-tick.md"
	row 2a "idle tick (\`jeagent-tick\`, what the timer runs) with 20 app environments: CPU (user+sys)" '`/bin/true`' "$true_cpu_ms" "$tick20_cpu_ms" ms "value<5" "< 5 ms"
	row 2b "idle tick, 20 app environments: peak RSS" '`/bin/true`' "$true_maxrss_kb" "$tick20_maxrss_kb" KB "value<10240" "< 10 MiB"
	row 2c "idle tick, 20 app environments: bytes written ($TICKS ticks, ru_oublock)" - - "$tick20_write_bytes" B "value==0" "no disk writes"
	row 2d "idle tick, 20 app environments: inodes created/changed under the root ($TICKS ticks)" - - "$tick20_changed" "" "value==0" "no disk writes"
	row 2f "the same idle tick against the cheapest Go program: how much of it is Go's own start-up on this machine" 'an empty Go program (bench/gonop)' "$nop_cpu_ms" "$tick20_cpu_ms" ms - "(for information: no Go program beats the reference)"
	row 2e "the full agent's idle \`jeagent rollforward\`, 20 app environments: CPU; peak RSS $(calc "$full20_maxrss_kb/1024") MiB" '`/bin/true`' "$true_cpu_ms" "$full20_cpu_ms" ms - "(for information)"
}

# --- 3: server apply -----------------------------------------------------------------
section_3() {
	say "3: server apply (verify, extract, switch, state write) vs tar -I zstd -xf"
	for s in 100M $([ "$BIG" = 1 ] && echo 1G); do
		[ -s "$T/out/b$s.id" ] || "$P" bundle "$T/trees/$s" -o "$T/out/b$s.tar.zst" >"$T/out/b$s.id"
	done
	AR=$T/roots/apply
	"$A" --root "$AR" init >/dev/null
	X=$T/out/x
	# reset VERSION ENV: back to "bundle received, nothing deployed", nothing dirty.
	resetcmd() {
		local v=$AR/apply/$2/source/versions
		echo "flock $AR/sys/pids/rollforward.pid true; [ ! -e $v/$1 ] || mv $v/$1 $TRASH/\$(date +%s%N); rm -f $v/current $AR/apply/$2/app.json; sync"
	}
	resetx="[ ! -e $X ] || mv $X $TRASH/\$(date +%s%N); mkdir -p $X; sync"
	for s in 100M $([ "$BIG" = 1 ] && echo 1G); do
		id=$(cat "$T/out/b$s.id")
		"$A" --root "$AR" receive apply "m${s,,}" "$id" <"$T/out/b$s.tar.zst" >/dev/null
	done
	id100=$(cat "$T/out/b100M.id")
	b100=$T/out/b100M.tar.zst
	tar100=$(zstd -dc "$b100" | wc -c)
	# Interleaved (jebench ab), not hyperfine: creating files is what these
	# commands mostly do, and its cost drifts over minutes on a shared disk.
	eval "$("$J" ab -n "$RUNS" -warmup 1 -prefix apply100 \
		-prepare "$(resetcmd "$id100" m100m)" -cmd "$A --root $AR deploy apply m100m $id100 --wait >/dev/null" \
		-prepare "$resetx" -cmd "tar -I zstd -xf $b100 -C $X" \
		-prepare "$resetx" -cmd "tar -I zstd -xf $b100 -C $X && sync -f $X" \
		-prepare "$(resetcmd "$id100" m100m); printf '{\"deployment\": {\"version\": \"$id100\"}}\n' >$AR/apply/m100m/app.json" \
		-cmd "$A --root $AR rollforward --quiet")"
	[ -L "$AR/apply/m100m/source/versions/current" ] || die "the apply of 100M did not go live"
	row 3a "server apply of a $(mib "$(sizeof "$b100")") bundle ($(mib "$tar100") of tar): \`jeagent deploy --wait\`, no hooks" \
		'`tar -I zstd -xf`' "$apply1001_median_ms" "$apply1000_median_ms" ms "ratio<=1.5" "within 1.5x"
	row 3b "the same, against a reference that also makes the files durable (the agent syncs before it switches)" \
		'`tar -I zstd -xf && sync -f`' "$apply1002_median_ms" "$apply1000_median_ms" ms - "(for information)"
	row 3c "the roll-forward alone (the deployment requested in app.json by hand: no process start, no waiting by \`--wait\`)" \
		'`tar -I zstd -xf`' "$apply1001_median_ms" "$apply1003_median_ms" ms - "(for information)"
	# The roll-forward alone (no polling by deploy --wait), its CPU and peak RSS:
	# the deployment is requested by hand in app.json, as docs/agent.md allows.
	{
		echo "| bundle | what | wall | CPU (user+sys) | peak RSS | bytes written |"
		echo "|---|---|---:|---:|---:|---:|"
	} >"$OUT/growth-apply.md"
	for s in 100M $([ "$BIG" = 1 ] && echo 1G); do
		id=$(cat "$T/out/b$s.id")
		n=3
		[ "$s" = 1G ] && n=1
		req="printf '{\"deployment\": {\"version\": \"$id\"}}\n' > $AR/apply/m${s,,}/app.json"
		eval "$("$J" rusage -n "$n" -warmup 0 -rss-runs 1 -prefix "eng${s}_" -prepare "$(resetcmd "$id" "m${s,,}"); $req" -- "$A" --root "$AR" rollforward --quiet)"
		[ -L "$AR/apply/m${s,,}/source/versions/current" ] || die "apply of $s did not go live"
		eval "$("$J" rusage -n "$n" -warmup 0 -rss-runs 1 -prefix "tar${s}_" -prepare "$resetx" -- tar -I zstd -xf "$T/out/b$s.tar.zst" -C "$X")"
		for who in eng tar; do
			eval "wall=\$${who}${s}_wall_ms cpu=\$${who}${s}_cpu_ms rss=\$${who}${s}_maxrss_kb wb=\$${who}${s}_write_bytes"
			label='`jeagent rollforward` (verify, extract, sync, switch, state)'
			[ "$who" = tar ] && label='`tar -I zstd -xf` (tar and zstd: peak of either)'
			echo "| $s ($(mib "$(sizeof "$T/out/b$s.tar.zst")")) | $label | $(calc "$wall/1000") s | $(calc "$cpu/1000") s | $(calc "$rss/1024") MiB | $(mib "$wb") |" >>"$OUT/growth-apply.md"
		done
		# Leave the 1 GB release out of the way of the disk.
		eval "$(resetcmd "$id" "m${s,,}")"
	done
	trash "$X"
	cat "$OUT/growth-apply.md"
	if [ "$BIG" = 1 ]; then
		row 3d "peak RSS of the roll-forward applying a 1 GB bundle" "the same for 100 MB" "$eng100M_maxrss_kb" "$eng1G_maxrss_kb" KB "ratio<=1.25" "flat (≤ 1.25x)"
	fi
}

# --- in-process Go benchmarks (where the time of rows 2 and 3 goes) ---------------------------
section_go() {
	say "Go benchmarks: planning an idle tick, hashing, bundling, verifying, extracting (in process)"
	$GO test -run '^$' -bench 'PlanIdle|HashOnly|Write$|Inspect$|Extract$' -benchtime "${BENCH_GOTIME:-3x}" \
		./internal/plan/ ./internal/bundle/ | tee "$RAW/gobench.txt" | grep -E '^(Benchmark|ok|FAIL)'
	{
		echo '```'
		grep -E '^Benchmark' "$RAW/gobench.txt"
		echo '```'
	} >"$OUT/gobench.md"
}

# ssh_setup: an sshd on loopback behind the counting proxy (jebench proxy:
# bytes up and down per connection in $S/wire.log), ssh_config host "web";
# once per run. Defines one CMD... (below).
SSH_READY=0
ssh_setup() {
	[ "$SSH_READY" = 1 ] && return
	SSH_READY=1
	S=$T/ssh
	ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$S/host_ed25519"
	ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$S/client_ed25519"
	cp "$S/client_ed25519.pub" "$S/authorized_keys"
	chmod 600 "$S/authorized_keys"
	[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
	sport=$("$J" freeport)
	cat >"$S/sshd_config" <<EOF
HostKey $S/host_ed25519
ListenAddress 127.0.0.1
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
EOF
	# The login shell of each SSH command reads the user's ~/.bashrc (Debian's
	# bash does under sshd). On a machine where that file does real work (pyenv
	# init: 100+ ms a command) it would be measured instead of the push: this
	# sshd gets a mount namespace of its own where the file is empty.
	# BENCH_USER_RC=1 keeps it.
	sshd=(/usr/sbin/sshd -D -e -f "$S/sshd_config" -p "$sport")
	rc=$(getent passwd "$(id -un)" | cut -d: -f6)/.bashrc
	if [ "${BENCH_USER_RC:-0}" != 1 ] && [ "$(id -u)" = 0 ] && [ -s "$rc" ] && command -v unshare >/dev/null; then
		: >"$S/empty.bashrc"
		unshare -m sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$S/empty.bashrc" "$rc" "${sshd[@]}" 2>"$S/sshd.log" &
		echo "sshd: $rc is empty for its sessions (set BENCH_USER_RC=1 to keep it)" >&2
	else
		"${sshd[@]}" 2>"$S/sshd.log" &
	fi
	PIDS+=($!)
	"$J" proxy -to "127.0.0.1:$sport" -port-file "$S/proxy.port" -stats "$S/wire.log" 2>"$S/proxy.log" &
	PIDS+=($!)
	for i in $(seq 100); do [ -s "$S/proxy.port" ] && break; sleep 0.05; done
	pport=$(cat "$S/proxy.port")
	echo "[127.0.0.1]:$pport $(cut -d' ' -f1-2 "$S/host_ed25519.pub")" >"$S/known_hosts"
	cat >"$S/ssh_config" <<EOF
Host web
  HostName 127.0.0.1
  Port $pport
  User $(id -un)
  IdentityFile $S/client_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $S/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
EOF
	mkdir -p "$S/home/.ssh"
	export HOME=$S/home SSH_AUTH_SOCK= JEPUSH_SSH_CONFIG=$S/ssh_config
	for i in $(seq 100); do ssh -F "$S/ssh_config" web true 2>/dev/null && break; sleep 0.1; done
	ssh -F "$S/ssh_config" web true || die "sshd on 127.0.0.1:$sport does not let us in: $(cat "$S/sshd.log")"
	wire() { tail -1 "$S/wire.log" | sed 's/up=\([0-9]*\) down=\([0-9]*\)/\1 \2/'; }
	lines() { wc -l <"$S/wire.log" 2>/dev/null || echo 0; }
	# one CMD...: runs CMD alone, sets one_ms and one_up/one_down (bytes on the wire).
	one() {
		local before t0 t1
		before=$(lines)
		t0=$(date +%s%N)
		"$@" >"$S/one.out" 2>"$S/one.err" || { cat "$S/one.err" >&2; die "$* failed"; }
		t1=$(date +%s%N)
		one_ms=$(((t1 - t0) / 1000000))
		for i in $(seq 100); do [ "$(lines)" -gt "$before" ] && break; sleep 0.02; done
		read -r one_up one_down < <(wire)
	}
}

# --- 4: jepush of an unchanged tree over a real sshd -------------------------------------
section_4() {
	say "4: jepush of an unchanged tree over sshd on loopback vs ssh HOST true"
	ssh_setup
	PR=$T/roots/push
	"$A" --root "$PR" init >/dev/null
	APPDIR=$T/roots/gosrc
	cp -a "$GOSRC" "$APPDIR"
	cat >"$APPDIR/jecloud.toml" <<EOF
app = "gosrc"

[env.bench]
hosts = ["web"]
agent = "$A"
root = "$PR"
EOF
	one "$P" "$APPDIR" bench
	push_id=$(grep -o 'version [0-9a-f]\{12\}' "$S/one.err" | head -1 | cut -d' ' -f2)
	first_ms=$one_ms first_up=$one_up
	echo "first push: ${first_ms} ms, $(mib "$first_up") sent, version $push_id" >&2
	bundle_before=$(stat -c '%i %Y %Z' "$PR/gosrc/bench/source/versions/$push_id.tar.zst")
	one "$P" "$APPDIR" bench
	grep -q "already has version $push_id" "$S/one.err" || die "the re-push did not find the version on the server: $(cat "$S/one.err")"
	sent=0
	grep -q "uploading to" "$S/one.err" && sent=$one_up
	[ "$(stat -c '%i %Y %Z' "$PR/gosrc/bench/source/versions/$push_id.tar.zst")" = "$bundle_before" ] || sent=unknown
	repush_up=$one_up repush_down=$one_down
	one ssh -F "$S/ssh_config" web true
	true_up=$one_up true_down=$one_down
	hf push --warmup 1 --runs "$RUNS" \
		-n "jepush DIR ENV (unchanged)" "$P $APPDIR bench" \
		-n "ssh HOST true" "ssh -F $S/ssh_config web true" \
		-n "jepush bundle --list DIR (the tree walk)" "$P bundle --list $APPDIR" \
		-n "jepush bundle DIR (ID: walk, tar, hash, compress)" "$P bundle $APPDIR" \
		-n "ssh HOST jeagent has" "ssh -F $S/ssh_config web $A --root $PR has gosrc bench $push_id" \
		-n "ssh HOST jeagent deploy --wait (a restart)" "ssh -F $S/ssh_config web $A --root $PR deploy gosrc bench $push_id --wait"
	lim=$(calc "$push2_median_ms + 2 * $push1_median_ms")
	row 4a "\`jepush DIR ENV\` of the unchanged Go tree to a server that has it (sshd on loopback)" '`ssh HOST true`' "$push1_median_ms" "$push0_median_ms" ms "value<=$lim" "≤ tree walk + 2 round trips ($(calc "$lim") ms)"
	row 4b "bundle bytes sent by that re-push" - - "$sent" B "value==0" "0"
	row 4c "all bytes on the wire for that re-push (both ways: SSH, has, deploy --wait and its output)" '`ssh HOST true` (both ways)' "$((true_up + true_down))" "$((repush_up + repush_down))" B - "(for information)"
	# One file changed: the push sends its changes against the live version
	# (all bytes up, SSH included), and for comparison what a zstd
	# --patch-from delta against the release the server has would be.
	printf '\n// changed by make bench\n' >>"$APPDIR/net/http/server.go"
	one "$P" "$APPDIR" bench
	change_ms=$one_ms change_up=$one_up change_down=$one_down
	grep -q "sending the changes" "$S/one.err" || die "the push of a one-file change sent no delta: $(cat "$S/one.err")"
	new_id=$(grep -o 'version [0-9a-f]\{12\}' "$S/one.err" | head -1 | cut -d' ' -f2)
	"$P" bundle "$APPDIR" -o "$T/out/changed.tar.zst" >/dev/null
	full=$(sizeof "$T/out/changed.tar.zst")
	zstd -q -dc "$PR/gosrc/bench/source/versions/$push_id.tar.zst" >"$T/out/old.tar"
	zstd -q -dc "$T/out/changed.tar.zst" >"$T/out/new.tar"
	t0=$(date +%s%N)
	zstd -q -f -3 -T0 --patch-from="$T/out/old.tar" "$T/out/new.tar" -o "$T/out/delta.zst"
	t1=$(date +%s%N)
	delta=$(sizeof "$T/out/delta.zst")
	delta_ms=$(((t1 - t0) / 1000000))
	rm -f "$T/out/old.tar" "$T/out/new.tar"
	echo "one-file change: push $change_ms ms, $(mib "$change_up") sent (full bundle $(mib "$full")); zstd --patch-from delta $delta bytes in $delta_ms ms" >&2
	row 4d "\`jepush\` after a one-file change of the Go tree: all bytes sent (the delta, SSH and commands; $change_ms ms)" "the full bundle" "$full" "$change_up" B "ratio<0.01" "< 1% of the full bundle"
	row 4e "the same push: bytes received (the live version's manifest, the agent's output)" "the full bundle" "$full" "$change_down" B - "(for information)"
	row 4f "for comparison: \`zstd -3 --patch-from=OLD.tar NEW.tar\` of that change ($delta_ms ms)" "the full bundle" "$full" "$delta" B - "(for information)"
	{
		echo "first push of the Go tree: $first_ms ms, $first_up bytes up"
		echo "re-push: up $repush_up, down $repush_down bytes; ssh true: up $true_up, down $true_down"
		echo "one-file change: $change_ms ms, $change_up bytes up, $change_down down, full bundle $full, version $new_id"
		echo "zstd --patch-from delta: $delta bytes, $delta_ms ms"
	} >"$RAW/push.txt"
	{
		echo "| step (same run, same sshd) | median |"
		echo "|---|---:|"
		echo "| \`jepush DIR ENV\`, unchanged tree | $push0_median_ms ms |"
		echo "| \`ssh HOST true\` (connect, authenticate, run, close) | $push1_median_ms ms |"
		echo "| \`jepush bundle --list\`: the tree walk | $push2_median_ms ms |"
		echo "| \`jepush bundle\`: walk + canonical tar + SHA-256 + zstd (what push does before asking) | $push3_median_ms ms |"
		echo "| \`ssh HOST jeagent has\` | $push4_median_ms ms |"
		echo "| \`ssh HOST jeagent deploy --wait\` of the live version (what push does next: a restart) | $push5_median_ms ms |"
		echo "| first push (uploads $(mib "$first_up")) | $first_ms ms |"
		echo "| push after a one-file change (sends $(mib "$change_up"), receives $(mib "$change_down")) | $change_ms ms |"
	} >"$OUT/growth-push.md"
	cat "$OUT/growth-push.md"
}

# --- delta: small changes, jepush against git push over the same sshd -------------------
# (a) one line of net/http/server.go (131 kB) in a copy of Go's net package
# (~400 files); (b) the same line in Go's source tree (~12k files); (c) a
# directory of 100 files renamed in that tree. Each change is committed and
# pushed with `git push` to a bare repository on the same server, over the
# same sshd, and pushed with jepush from the same directory (the bundle
# leaves .git out). Bytes are what the client sent on the SSH connection
# (jebench proxy), and each tool's own count of its payload.
section_delta() {
	say "delta: jepush vs git push of small changes (sshd on loopback)"
	command -v git >/dev/null || die "missing: git (apt-get install -y git)"
	ssh_setup
	export GIT_SSH_COMMAND="ssh -F $S/ssh_config" GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost \
		GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
	PD=$T/roots/delta
	"$A" --root "$PD" init >/dev/null
	: >"$RAW/delta.txt"
	# app NAME SRC: a copy of SRC as app NAME, committed, pushed once by both.
	app() {
		local name=$1 src=$2
		APPD=$T/roots/delta-$1
		[ -n "$name" ] && [ -d "$src" ] || die "app $name $src"
		cp -a "$src" "$APPD"
		printf 'app = "%s"\n\n[env.bench]\nhosts = ["web"]\nagent = "%s"\nroot = "%s"\n' "$name" "$A" "$PD" >"$APPD/jecloud.toml"
		git init -q -b main "$APPD"
		git -C "$APPD" add -A
		git -C "$APPD" commit -q -m v1
		git init -q --bare "$T/roots/git-$name.git"
		one git -C "$APPD" push -q "web:$T/roots/git-$name.git" main
		one "$P" "$APPD" bench
	}
	# change NAME ID WHAT: commits the change made in $APPD, pushes it with
	# git, then with jepush, and writes the rows.
	change() {
		local name=$1 id=$2 what=$3
		git -C "$APPD" add -A
		git -C "$APPD" commit -q -m "$id"
		one git -C "$APPD" push --progress "web:$T/roots/git-$name.git" main
		local git_ms=$one_ms git_up=$one_up git_down=$one_down pack
		pack=$(tr '\r' '\n' <"$S/one.err" | grep -o 'Writing objects: 100% .*' | tail -1 | sed 's/.*), //; s/ |.*//; s/, done.*//')
		cp "$S/one.err" "$RAW/delta-$id-git.txt"
		one "$P" "$APPD" bench
		cp "$S/one.err" "$RAW/delta-$id-jepush.txt"
		grep -q "sending the changes" "$S/one.err" || die "$what: jepush sent no delta: $(cat "$S/one.err")"
		local je_ms=$one_ms je_up=$one_up je_down=$one_down delta full
		delta=$(tr '\r' '\n' <"$S/one.err" | grep -o '[0-9.]* [KMGi]*B sent instead of the whole bundle' | tail -1 | sed 's/ sent.*//')
		"$P" bundle "$APPD" -o "$T/out/$id.tar.zst" >/dev/null
		full=$(sizeof "$T/out/$id.tar.zst")
		echo "$what: git push ${git_ms} ms, ${git_up} B up (pack $pack); jepush ${je_ms} ms, ${je_up} B up (delta $delta); full bundle $full B" >&2
		row "${id}1" "$what: bytes the client sent (SSH and all commands; jepush's delta $delta, git's pack $pack)" '`git push` over SSH' "$git_up" "$je_up" B "ratio<=1" "≤ git"
		case $id in
		b) row b2 "$what: jepush's bytes sent, against the full bundle" "the full bundle" "$full" "$je_up" B "ratio<0.001" "< 0.1% of the full bundle" ;;
		c) row c2 "$what: jepush's bytes sent" - - "$je_up" B "value<5120" "< 5 KiB" ;;
		esac
		row "${id}3" "$what: wall time of the push (jepush's includes reading the tree and \`deploy --wait\`)" '`git push`' "$git_ms" "$je_ms" ms - "(for information)"
		echo "$id: $what: git ${git_ms} ms, ${git_up}/${git_down} B up/down, pack $pack; jepush ${je_ms} ms, ${je_up}/${je_down} B up/down, delta $delta; full bundle $full B" >>"$RAW/delta.txt"
	}
	oneline() { sed -i '0,/^\/\/ ServeMux is an HTTP request multiplexer\./s//\/\/ ServeMux is an HTTP request multiplexer (changed by make bench)./' "$1"; }

	app net "$GOSRC/net"
	oneline "$APPD/http/server.go"
	change net a "one line of net/http/server.go (131 kB) in Go's net package ($(find "$APPD" -type f -not -path '*/.git/*' | wc -l) files)"

	app gosrc "$GOSRC"
	oneline "$APPD/net/http/server.go"
	change gosrc b "one line of net/http/server.go in Go's source tree ($(find "$APPD" -type f -not -path '*/.git/*' | wc -l) files)"
	mv "$APPD/cmd/vendor/golang.org/x/tools/go/analysis" "$APPD/cmd/vendor/golang.org/x/tools/go/analysis2"
	change gosrc c "a directory of $(find "$APPD/cmd/vendor/golang.org/x/tools/go/analysis2" -type f | wc -l) files renamed in Go's source tree"
	cat "$RAW/delta.txt"
}

for s in ${BENCH_ONLY:-1 5 2 3 go 4 delta}; do
	"section_$s"
done

# --- the table ----------------------------------------------------------------------
say "results ($OUT)"
"$J" table "$TSV" >"$OUT/table.md"
for f in growth-bundle growth-tick growth-apply growth-push gobench; do
	[ -e "$OUT/$f.md" ] && { cat "$OUT/$f.md"; echo; }
done >"$OUT/growth.md"
echo
cat "$OUT/machine.md"
echo
cat "$OUT/table.md"
