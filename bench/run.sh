#!/usr/bin/env bash
# bench/run.sh: throughput and latency of Caddy with jit_auth against bare
# Caddy reverse_proxy, on this machine, over loopback.
#
#   bench/run.sh
#
# It builds ./cmd/caddy, starts one upstream (bench/upstream, 64-byte
# body), a local OpenID provider and a Caddy with two sites (bench/setup):
# "bare" (reverse_proxy) and "jit_auth" (jit_auth + reverse_proxy), logs in
# once for a session cookie, checks that the jit_auth site really answers
# 200 with the cookie and 302/401 without it, then runs wrk against both
# in interleaved rounds (bare, jit_auth, bare, jit_auth, ...) and prints
# the medians. Both contenders get byte-identical requests (same Cookie
# and Accept headers), so the difference is jit_auth's work alone.
#
# Settings (environment):
#   ROUNDS=5 DURATION=5s WARMUP=2s THREADS=2 CONNECTIONS=32
#   KEEP_WORK=1   keep the temporary directory (Caddyfile, logs, wrk output)
#   PROFILE=1     after the measured rounds, run one more wrk per contender
#                 while taking a CPU profile of Caddy through its admin
#                 endpoint (enabled on loopback for this), print the top
#                 functions and keep the profiles (implies KEEP_WORK=1)
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
PROFILE=${PROFILE:-}
[[ $PROFILE == 1 ]] && KEEP_WORK=1

cd "$(dirname "$0")/.."

die() { echo "run.sh: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk not found; install it with: apt-get install -y wrk"
command -v curl >/dev/null || die "curl not found"
command -v go >/dev/null || die "go not found"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jitauth-bench.XXXXXX")
PIDS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# setup stops its Caddy on SIGTERM; Caddy's pid is killed too in case
	# setup could not.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null || true
	done
	if [[ -n ${CADDY_PID:-} ]]; then
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$CADDY_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill -9 "$CADDY_PID" 2>/dev/null || true
	fi
	wait 2>/dev/null || true
	if [[ ${KEEP_WORK:-} == 1 ]]; then
		echo "work directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# waitfile FILE PID WHAT: wait up to 60s for FILE, failing early if PID died.
waitfile() {
	for _ in $(seq 600); do
		[[ -s $1 ]] && return 0
		kill -0 "$2" 2>/dev/null || die "$3 exited before it was ready"
		sleep 0.1
	done
	die "$3 not ready after 60s"
}

echo "== building into $WORK"
go build -o "$WORK/caddy" ./cmd/caddy
go build -o "$WORK/upstream" ./bench/upstream
go build -o "$WORK/setup" ./bench/setup

echo "== starting the upstream, the identity provider and Caddy"
"$WORK/upstream" -addr 127.0.0.1:0 -addr-file "$WORK/upstream.addr" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
waitfile "$WORK/upstream.addr" "${PIDS[-1]}" upstream
UPSTREAM=$(<"$WORK/upstream.addr")

ADMIN_FLAG=()
[[ $PROFILE == 1 ]] && ADMIN_FLAG=(-admin auto)
"$WORK/setup" -caddy "$WORK/caddy" -upstream "$UPSTREAM" -dir "$WORK" -out "$WORK/setup.env" "${ADMIN_FLAG[@]}" >"$WORK/setup.log" 2>&1 &
PIDS+=($!)
if ! (waitfile "$WORK/setup.env" "${PIDS[-1]}" setup); then
	cat "$WORK/setup.log" >&2
	[[ -f $WORK/caddy.log ]] && tail -20 "$WORK/caddy.log" >&2
	exit 1
fi
envval() { sed -n "s/^$1=//p" "$WORK/setup.env"; }
BARE_URL=$(envval BARE_URL)
AUTH_URL=$(envval AUTH_URL)
COOKIE=$(envval COOKIE)
CADDY_PID=$(envval CADDY_PID)
[[ -n $BARE_URL && -n $AUTH_URL && -n $COOKIE && -n $CADDY_PID ]] || die "incomplete $WORK/setup.env"
echo "   upstream http://$UPSTREAM/, bare $BARE_URL, jit_auth $AUTH_URL"

upstream_count() { curl -fsS "http://$UPSTREAM/__count"; }

echo "== checking the contenders"
curl -fsS -o "$WORK/expected.body" "http://$UPSTREAM/"
# check NAME WANT_STATUS URL [curl args...]: the status, and for 200 the
# upstream's body (so a login page or an error page is never measured).
check() {
	local name=$1 want=$2 url=$3
	shift 3
	local got
	got=$(curl -sS -o "$WORK/check.body" -w '%{http_code}' "$@" "$url")
	[[ $got == "$want" ]] || die "check '$name': status $got, want $want: $(head -c 300 "$WORK/check.body")"
	if [[ $want == 200 ]] && ! cmp -s "$WORK/check.body" "$WORK/expected.body"; then
		die "check '$name': body is not the upstream's: $(head -c 300 "$WORK/check.body")"
	fi
	printf '   ok  %-44s %s\n' "$name" "$got"
}
check "bare, with cookie" 200 "$BARE_URL" -H "Cookie: $COOKIE" -H "Accept: text/html"
check "jit_auth, with cookie" 200 "$AUTH_URL" -H "Cookie: $COOKIE" -H "Accept: text/html"
check "jit_auth, no cookie, browser navigation" 302 "$AUTH_URL" -H "Accept: text/html"
check "jit_auth, no cookie, API client" 401 "$AUTH_URL" -H "Accept: application/json"
check "jit_auth, tampered cookie" 302 "$AUTH_URL" -H "Cookie: ${COOKIE%?????}AAAAA" -H "Accept: text/html"
check "jit_auth, spoofed Remote-User, no cookie" 302 "$AUTH_URL" -H "Remote-User: admin" -H "Accept: text/html"

# to_ms VALUE: wrk's latency (e.g. 812.00us, 1.23ms, 1.01s) in ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else { print "NaN" }
	}'
}

# bench NAME URL DURATION OUTFILE: one wrk run, checked: no socket errors,
# no non-2xx/3xx, and the upstream served at least as many requests as wrk
# counted (so no response came from jit_auth itself, e.g. a 302).
bench() {
	local name=$1 url=$2 dur=$3 out=$4 before after requests served
	before=$(upstream_count)
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --latency \
		-H "Cookie: $COOKIE" -H "Accept: text/html" "$url" >"$out" 2>&1 || die "wrk failed for $name: $(cat "$out")"
	after=$(upstream_count)
	requests=$(awk '/requests in/ { print $1; exit }' "$out")
	[[ -n $requests ]] || die "cannot parse wrk output for $name: $(cat "$out")"
	if grep -qE 'Non-2xx or 3xx|Socket errors' "$out"; then
		die "errors in the $name run: $(grep -E 'Non-2xx or 3xx|Socket errors' "$out")"
	fi
	served=$((after - before))
	if ((served < requests)); then
		die "$name: wrk counted $requests responses but the upstream served only $served: some responses did not come from the upstream"
	fi
}

# parse OUTFILE: "req/s p50_ms p99_ms"
parse() {
	local rps p50 p99
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$1")
	p50=$(awk '$1 == "50%" { print $2; exit }' "$1")
	p99=$(awk '$1 == "99%" { print $2; exit }' "$1")
	echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}

echo "== warm-up ($WARMUP each)"
bench bare "$BARE_URL" "$WARMUP" "$WORK/warmup-bare.txt"
bench jit_auth "$AUTH_URL" "$WARMUP" "$WORK/warmup-jit_auth.txt"

echo "== $ROUNDS interleaved rounds: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency"
printf '   %-6s %-9s %12s %10s %10s\n' round contender 'req/s' 'p50 ms' 'p99 ms'
: >"$WORK/results.txt"
for ((round = 1; round <= ROUNDS; round++)); do
	for contender in bare jit_auth; do
		url=$BARE_URL
		[[ $contender == jit_auth ]] && url=$AUTH_URL
		out="$WORK/wrk-$contender-$round.txt"
		bench "$contender" "$url" "$DURATION" "$out"
		read -r rps p50 p99 < <(parse "$out")
		echo "$contender $rps $p50 $p99" >>"$WORK/results.txt"
		printf '   %-6s %-9s %12s %10s %10s\n' "$round" "$contender" "$rps" "$p50" "$p99"
	done
done

# median COLUMN CONTENDER
median() {
	awk -v c="$2" -v col="$1" '$1 == c { print $col }' "$WORK/results.txt" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

BARE_RPS=$(median 2 bare)
echo
echo "== results: median of $ROUNDS rounds, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) CPUs shared by wrk, Caddy and the upstream"
printf '%-32s %12s %10s %10s %14s\n' contender 'req/s' 'p50 ms' 'p99 ms' 'ratio to bare'
for contender in bare jit_auth; do
	rps=$(median 2 "$contender")
	label="bare reverse_proxy"
	[[ $contender == jit_auth ]] && label="jit_auth + reverse_proxy"
	printf '%-32s %12.0f %10.3f %10.3f %14.3f\n' "$label" "$rps" "$(median 3 "$contender")" "$(median 4 "$contender")" \
		"$(awk -v a="$rps" -v b="$BARE_RPS" 'BEGIN { print a / b }')"
done
AUTH_RPS=$(median 2 jit_auth)
awk -v a="$AUTH_RPS" -v b="$BARE_RPS" -v n="$(nproc)" 'BEGIN {
	printf "jit_auth adds %.1f us of wall time per request on this saturated machine (1/req/s difference), about %.0f CPU-us over %d CPUs\n", 1e6 / a - 1e6 / b, n * (1e6 / a - 1e6 / b), n
}'

if [[ $PROFILE == 1 ]]; then
	ADMIN_URL=$(envval ADMIN_URL)
	[[ -n $ADMIN_URL ]] || die "no ADMIN_URL from setup"
	secs=${DURATION%s}
	[[ $secs =~ ^[0-9]+$ ]] || secs=5
	for contender in bare jit_auth; do
		url=$BARE_URL
		[[ $contender == jit_auth ]] && url=$AUTH_URL
		echo
		echo "== CPU profile of Caddy during one more $contender run (not in the table)"
		curl -fsS -o "$WORK/caddy-$contender.pprof" "${ADMIN_URL}debug/pprof/profile?seconds=$((secs - 1))" &
		prof=$!
		bench "$contender" "$url" "$DURATION" "$WORK/wrk-$contender-profile.txt"
		wait "$prof" || die "could not fetch the profile"
		go tool pprof -top -nodecount 15 "$WORK/caddy" "$WORK/caddy-$contender.pprof" 2>/dev/null | sed -n '4,30p'
	done
	echo
	echo "profiles: $WORK/caddy-bare.pprof $WORK/caddy-jit_auth.pprof (binary $WORK/caddy)"
	echo "compare:  go tool pprof -top -diff_base $WORK/caddy-bare.pprof $WORK/caddy $WORK/caddy-jit_auth.pprof"
fi
