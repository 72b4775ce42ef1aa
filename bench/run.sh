#!/usr/bin/env bash
# bench/run.sh: throughput and latency of Caddy with jit_auth against bare
# Caddy reverse_proxy and against oauth2-proxy, on this machine, over
# loopback.
#
#   bench/run.sh
#
# It builds ./cmd/caddy, installs oauth2-proxy v7 from the Go module proxy
# unless already there, starts one upstream (bench/upstream, 64-byte
# body), a local OpenID provider, a Caddy with four sites and oauth2-proxy
# (bench/setup): "bare" (reverse_proxy), "jit_auth" (jit_auth +
# reverse_proxy), "jit_assertion" (the same with a signed identity
# assertion), "bare_headers" (reverse_proxy behind Caddy's
# request_header, which withholds jit_auth's cookie and sets its four
# default identity headers as constants: the upstream request jit_auth
# leaves, without jit_auth's own work; checked to send the upstream the
# same header fields) and "oauth2_proxy" (oauth2-proxy, OIDC at the same
# provider, cookie sessions), all in front of the same upstream. It logs
# in once through jit_auth and once through oauth2-proxy for their session
# cookies, checks that both really answer 200 with the cookie and
# 302/401 without it, then runs wrk against all of them in interleaved
# rounds (bare, jit_auth, bare_headers, oauth2_proxy; then jit_auth,
# bare_headers, oauth2_proxy, bare; ...: each round starts one later) and
# prints the medians.
# All contenders get byte-identical requests (one Cookie header carrying
# both session cookies, same Accept header), so the difference is the
# authentication layer's work alone. Each round also reports the CPU
# time (user+system, /proc/<pid>/stat) per request of the contender's
# process and of the upstream; the target for jit_auth is at most 1.05x
# bare's CPU per request.
#
# Settings (environment):
#   ROUNDS=5 DURATION=5s WARMUP=2s THREADS=2 CONNECTIONS=32
#   OAUTH2_PROXY=auto  auto: include oauth2-proxy, installing it if needed;
#                      if it cannot be installed or started, say why and
#                      go on with two contenders. 1: the same but fail
#                      instead. 0: leave it out.
#   OAUTH2_PROXY_VERSION=v7.15.6
#   OAUTH2_PROXY_BIN   use this oauth2-proxy binary instead of installing
#                      (default: $(go env GOPATH)/bin/oauth2-proxy,
#                      installed there with go install if it is missing or
#                      another version)
#   KEEP_WORK=1   keep the temporary directory (Caddyfile, logs, wrk output)
#   PROFILE=1     after the measured rounds, run one more wrk per Caddy
#                 contender while taking a CPU profile of Caddy through its
#                 admin endpoint (enabled on loopback for this), print the
#                 top functions and keep the profiles (implies KEEP_WORK=1)
#   LOGINTIME=1   afterwards, run bench/logintime (time of the login
#                 callback without the provider's time; LOGINS=200);
#                 the default, 0 leaves it out
#   PIN=1         pin Caddy (and oauth2-proxy) to CPU 0 and wrk and the
#                 upstream to the other CPUs (taskset), so the proxy under
#                 test does not share its CPU with the load generator;
#                 Go then runs Caddy with GOMAXPROCS=1. The default, 0,
#                 lets the scheduler place them
#   PAIRED=1      after the interleaved rounds, paired rounds (the default;
#                 0 leaves them out): a second Caddy process with the same
#                 sites ("the twin") runs beside the first, and each pair
#                 round loads bare on one process and a contender on the
#                 other at the same time (wrk -t1, half the connections
#                 each), swapping the processes every other pair. Both
#                 halves of a pair then share the same moment of the
#                 shared VM, so a drift in its speed cancels out of their
#                 ratio ("duet benchmarking", Bulej et al., ICPE 2020);
#                 the interleaved rounds cannot cancel a drift within a
#                 round. PAIR_ROUNDS=$ROUNDS pairs per contender;
#                 PAIR_WITH="jit_auth bare_headers jit_assertion" the
#                 contenders paired with bare (any of those, in any order).
#   TWIN_CADDY=path  compare two builds instead (implies PAIRED=1): the twin
#                 runs this Caddy binary (another build of ./cmd/caddy, say
#                 of main), and each pair round loads the same contender on
#                 both processes at once; the ratio is this build's CPU per
#                 request to the twin build's. PAIR_WITH may then name bare
#                 too: bare on both builds is the control, whose ratio
#                 shows what the two processes' positions alone make
#   REQUEST=minimal  the request every contender gets: "minimal" (the
#                 default) is wrk's own plus the Cookie and an Accept
#                 header; "browser" adds the other headers Chromium sends
#                 on a navigation (User-Agent, Accept-*, Sec-Fetch-*,
#                 Sec-Ch-Ua*, Upgrade-Insecure-Requests, Cache-Control).
#                 With the minimal request, the four identity headers take
#                 the proxy's header map past 8 entries, which is a step
#                 in Go's map (bench/README.md)
#   MEMORY=1      afterwards, the heap 10,000 live sessions take in the
#                 session cache (BenchmarkSessionCacheMemory); the
#                 default, 0 leaves it out
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
PROFILE=${PROFILE:-}
[[ $PROFILE == 1 ]] && KEEP_WORK=1
OAUTH2_PROXY=${OAUTH2_PROXY:-auto}
OAUTH2_PROXY_VERSION=${OAUTH2_PROXY_VERSION:-v7.15.6}
LOGINTIME=${LOGINTIME:-1}
MEMORY=${MEMORY:-1}
LOGINS=${LOGINS:-200}
PIN=${PIN:-0}
PAIRED=${PAIRED:-1}
REQUEST=${REQUEST:-minimal}
PAIR_ROUNDS=${PAIR_ROUNDS:-$ROUNDS}
read -ra PAIRED_WITH <<<"${PAIR_WITH:-jit_auth bare_headers jit_assertion}"
TWIN_CADDY=${TWIN_CADDY:-}
if [[ -n $TWIN_CADDY ]]; then
	[[ -x $TWIN_CADDY ]] || { echo "run.sh: TWIN_CADDY=$TWIN_CADDY is not an executable" >&2; exit 1; }
	TWIN_CADDY=$(realpath "$TWIN_CADDY")
	PAIRED=1
fi

cd "$(dirname "$0")/.."

die() { echo "run.sh: $*" >&2; exit 1; }
((${#PAIRED_WITH[@]} > 0)) || die "PAIR_WITH names no contender"
for c in "${PAIRED_WITH[@]}"; do
	[[ $c == jit_auth || $c == bare_headers || $c == jit_assertion || ($c == bare && -n $TWIN_CADDY) ]] ||
		die "PAIR_WITH: $c is not jit_auth, bare_headers or jit_assertion (or, with TWIN_CADDY, bare)"
done
command -v wrk >/dev/null || die "wrk not found; install it with: apt-get install -y wrk"
[[ $REQUEST == minimal || $REQUEST == browser ]] || die "REQUEST must be minimal or browser, not $REQUEST"
command -v curl >/dev/null || die "curl not found"
command -v go >/dev/null || die "go not found"

# PROXY_CPUS and LOAD_CPUS prefix the commands that start the proxies and
# the load (wrk, the upstream) when PIN=1.
PROXY_CPUS=()
LOAD_CPUS=()
if [[ $PIN == 1 ]]; then
	command -v taskset >/dev/null || die "PIN=1 needs taskset (util-linux)"
	(($(nproc) >= 2)) || die "PIN=1 needs at least 2 CPUs"
	PROXY_CPUS=(taskset -c 0)
	LOAD_CPUS=(taskset -c "1-$(($(nproc) - 1))")
fi

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
	for pid in ${CADDY_PID:-} ${OAUTH2_PID:-}; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -9 "$pid" 2>/dev/null || true
	done
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

# oauth2_proxy_unavailable REASON: with OAUTH2_PROXY=1 a failure, else a
# warning; the run goes on with two contenders.
OAUTH2_MISSING=
oauth2_proxy_unavailable() {
	[[ $OAUTH2_PROXY == 1 ]] && die "oauth2-proxy: $1"
	OAUTH2_MISSING=$1
	echo "   WARNING: oauth2-proxy left out: $1" >&2
}

# bin_version BINARY: the main module's version a Go binary was built from.
bin_version() { go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'; }

OAUTH2_BIN=
if [[ $OAUTH2_PROXY != 0 ]]; then
	if [[ -n ${OAUTH2_PROXY_BIN:-} ]]; then
		if [[ -x $OAUTH2_PROXY_BIN ]]; then
			OAUTH2_BIN=$OAUTH2_PROXY_BIN
		else
			oauth2_proxy_unavailable "OAUTH2_PROXY_BIN=$OAUTH2_PROXY_BIN is not an executable file"
		fi
	else
		gobin=$(go env GOPATH)/bin
		OAUTH2_BIN=$gobin/oauth2-proxy
		if [[ $(bin_version "$OAUTH2_BIN") != "$OAUTH2_PROXY_VERSION" ]]; then
			echo "== installing oauth2-proxy $OAUTH2_PROXY_VERSION into $gobin (once; takes a few minutes)"
			if ! (cd "$WORK" && GOBIN=$gobin GOFLAGS= go install "github.com/oauth2-proxy/oauth2-proxy/v7@$OAUTH2_PROXY_VERSION") >"$WORK/oauth2-proxy-install.log" 2>&1; then
				tail -5 "$WORK/oauth2-proxy-install.log" >&2
				OAUTH2_BIN=
				oauth2_proxy_unavailable "go install github.com/oauth2-proxy/oauth2-proxy/v7@$OAUTH2_PROXY_VERSION failed (output above)"
			fi
		fi
	fi
	[[ -n $OAUTH2_BIN ]] && echo "== oauth2-proxy: $OAUTH2_BIN ($(bin_version "$OAUTH2_BIN"))"
fi

echo "== building into $WORK"
go build -o "$WORK/caddy" ./cmd/caddy
go build -o "$WORK/upstream" ./bench/upstream
go build -o "$WORK/setup" ./bench/setup

echo "== starting the upstream, the identity provider, Caddy${OAUTH2_BIN:+ and oauth2-proxy}"
"${LOAD_CPUS[@]}" "$WORK/upstream" -addr 127.0.0.1:0 -addr-file "$WORK/upstream.addr" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
waitfile "$WORK/upstream.addr" "${PIDS[-1]}" upstream
UPSTREAM=$(<"$WORK/upstream.addr")

# start_setup [-oauth2-proxy BIN]: start bench/setup and wait until it is
# ready; on failure print its log and return 1 (setup is then gone). Each
# attempt starts from an empty user store: a new provider has a new issuer,
# so an earlier attempt's user would conflict with the new login.
start_setup() {
	local opts=()
	rm -rf "$WORK/setup.env" "$WORK"/users.db* "$WORK/storage"
	[[ $PROFILE == 1 ]] && opts=(-admin auto)
	[[ $PAIRED == 1 ]] && opts+=(-twin)
	[[ -n $TWIN_CADDY ]] && opts+=(-twin-caddy "$TWIN_CADDY")
	"${PROXY_CPUS[@]}" "$WORK/setup" -caddy "$WORK/caddy" -upstream "$UPSTREAM" -dir "$WORK" -out "$WORK/setup.env" "${opts[@]}" "$@" >"$WORK/setup.log" 2>&1 &
	PIDS+=($!)
	if ! (waitfile "$WORK/setup.env" "${PIDS[-1]}" setup); then
		kill "${PIDS[-1]}" 2>/dev/null || true # if it timed out
		wait "${PIDS[-1]}" 2>/dev/null || true
		cat "$WORK/setup.log" >&2
		[[ -f $WORK/caddy.log ]] && tail -20 "$WORK/caddy.log" >&2
		[[ $* == *-oauth2-proxy* && -f $WORK/oauth2-proxy.log ]] && tail -20 "$WORK/oauth2-proxy.log" >&2
		return 1
	fi
}
if [[ -n $OAUTH2_BIN ]]; then
	if ! start_setup -oauth2-proxy "$OAUTH2_BIN"; then
		OAUTH2_BIN=
		oauth2_proxy_unavailable "bench/setup could not start it or log in through it (its output is above the warning)"
		echo "== starting again without oauth2-proxy"
		start_setup || exit 1
	fi
else
	start_setup || exit 1
fi
envval() { sed -n "s/^$1=//p" "$WORK/setup.env"; }
BARE_URL=$(envval BARE_URL)
AUTH_URL=$(envval AUTH_URL)
HEADERS_URL=$(envval HEADERS_URL)
ASSERT_URL=$(envval ASSERT_URL)
COOKIE=$(envval COOKIE)
CADDY_PID=$(envval CADDY_PID)
[[ -n $BARE_URL && -n $AUTH_URL && -n $HEADERS_URL && -n $ASSERT_URL && -n $COOKIE && -n $CADDY_PID ]] || die "incomplete $WORK/setup.env"
CONTENDERS=(bare jit_auth bare_headers jit_assertion)
declare -A URL=([bare]=$BARE_URL [jit_auth]=$AUTH_URL [bare_headers]=$HEADERS_URL [jit_assertion]=$ASSERT_URL)
declare -A LABEL=([bare]="bare reverse_proxy" [jit_auth]="jit_auth + reverse_proxy" [bare_headers]="jit_auth's headers, no jit" [jit_assertion]="jit_auth + assertion" [oauth2_proxy]="oauth2-proxy $OAUTH2_PROXY_VERSION")
# ALL_COOKIES is the Cookie header of every measured request, to every
# contender: both sessions, so the requests are byte-identical.
ALL_COOKIES=$COOKIE
if [[ -n $OAUTH2_BIN ]]; then
	OAUTH2_URL=$(envval OAUTH2_URL)
	OAUTH2_COOKIE=$(envval OAUTH2_COOKIE)
	OAUTH2_PID=$(envval OAUTH2_PID)
	[[ -n $OAUTH2_URL && -n $OAUTH2_COOKIE && -n $OAUTH2_PID ]] || die "incomplete $WORK/setup.env (oauth2-proxy)"
	CONTENDERS+=(oauth2_proxy)
	URL[oauth2_proxy]=$OAUTH2_URL
	ALL_COOKIES="$COOKIE; $OAUTH2_COOKIE"
fi
# WRK_HEADERS: the request headers of every measured request.
case $REQUEST in
minimal) WRK_HEADERS=(-H "Cookie: $ALL_COOKIES" -H "Accept: text/html") ;;
browser)
	WRK_HEADERS=(
		-H "Cache-Control: max-age=0"
		-H 'Sec-Ch-Ua: "Chromium";v="131", "Not_A Brand";v="24"'
		-H "Sec-Ch-Ua-Mobile: ?0"
		-H 'Sec-Ch-Ua-Platform: "Linux"'
		-H "Upgrade-Insecure-Requests: 1"
		-H "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
		-H "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
		-H "Sec-Fetch-Site: none"
		-H "Sec-Fetch-Mode: navigate"
		-H "Sec-Fetch-User: ?1"
		-H "Sec-Fetch-Dest: document"
		-H "Accept-Encoding: gzip, deflate, br, zstd"
		-H "Accept-Language: en-GB,en;q=0.9"
		-H "Cookie: $ALL_COOKIES"
	)
	;;
esac
echo "   upstream http://$UPSTREAM/, bare $BARE_URL, jit_auth $AUTH_URL${OAUTH2_BIN:+, oauth2_proxy $OAUTH2_URL}"

# cpu_ticks PID: user+system CPU time of a process so far, in clock ticks
# (/proc/PID/stat fields 14 and 15, counted after the ")" that ends the
# command name, which may itself contain spaces).
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
UPSTREAM_PID=${PIDS[0]}
# PROC_PID[contender]: the process whose CPU time a round of that
# contender is charged with.
declare -A PROC_PID=([bare]=$CADDY_PID [jit_auth]=$CADDY_PID [bare_headers]=$CADDY_PID [jit_assertion]=$CADDY_PID [oauth2_proxy]=${OAUTH2_PID:-})

upstream_count() { curl -fsS "http://$UPSTREAM/__count"; }
upstream_conns() { curl -fsS "http://$UPSTREAM/__conns"; }

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
for contender in "${CONTENDERS[@]}"; do
	check "$contender, with the cookies" 200 "${URL[$contender]}" "${WRK_HEADERS[@]}"
done
declare -A TWIN_URL=()
if [[ $PAIRED == 1 ]]; then
	TWIN_URL=([bare]=$(envval TWIN_BARE_URL) [jit_auth]=$(envval TWIN_AUTH_URL) [bare_headers]=$(envval TWIN_HEADERS_URL) [jit_assertion]=$(envval TWIN_ASSERT_URL))
	TWIN_PID=$(envval TWIN_CADDY_PID)
	[[ -n $TWIN_PID ]] || die "incomplete $WORK/setup.env (twin)"
	for contender in bare jit_auth bare_headers jit_assertion; do
		[[ -n ${TWIN_URL[$contender]} ]] || die "incomplete $WORK/setup.env (twin $contender)"
		check "$contender on the twin, with the cookies" 200 "${TWIN_URL[$contender]}" "${WRK_HEADERS[@]}"
	done
	check "jit_auth on the twin, no cookie" 401 "${TWIN_URL[jit_auth]}" -H "Accept: application/json"
fi
check "jit_auth, no cookie, browser navigation" 302 "$AUTH_URL" -H "Accept: text/html"
check "jit_auth, no cookie, API client" 401 "$AUTH_URL" -H "Accept: application/json"
check "jit_auth, tampered cookie" 302 "$AUTH_URL" -H "Cookie: ${COOKIE%?????}AAAAA" -H "Accept: text/html"
check "jit_auth, spoofed Remote-User, no cookie" 302 "$AUTH_URL" -H "Remote-User: admin" -H "Accept: text/html"
if [[ -n $OAUTH2_BIN ]]; then
	check "jit_auth, oauth2-proxy's cookie only" 302 "$AUTH_URL" -H "Cookie: $OAUTH2_COOKIE" -H "Accept: text/html"
	check "oauth2_proxy, no cookie, browser navigation" 302 "$OAUTH2_URL" -H "Accept: text/html"
	check "oauth2_proxy, no cookie, API client" 401 "$OAUTH2_URL" -H "Accept: application/json"
	check "oauth2_proxy, tampered cookie" 302 "$OAUTH2_URL" -H "Cookie: ${OAUTH2_COOKIE%?????}AAAAA" -H "Accept: text/html"
	check "oauth2_proxy, spoofed X-Forwarded-User" 302 "$OAUTH2_URL" -H "X-Forwarded-User: admin" -H "Accept: text/html"
	check "oauth2_proxy, jit_auth's cookie only" 302 "$OAUTH2_URL" -H "Cookie: $COOKIE" -H "Accept: text/html"
fi
# bare_headers stands for the upstream request jit_auth leaves without
# jit_auth's own work, so both must send the upstream the same header
# fields with values of the same lengths.
for contender in jit_auth bare_headers; do
	curl -fsS "${WRK_HEADERS[@]}" -o "$WORK/headers-$contender.txt" "${URL[$contender]}__headers"
done
cmp -s "$WORK/headers-jit_auth.txt" "$WORK/headers-bare_headers.txt" ||
	die "check: jit_auth and bare_headers send the upstream different headers:
$(diff "$WORK/headers-jit_auth.txt" "$WORK/headers-bare_headers.txt")"
printf '   ok  %-44s %s\n' "bare_headers sends what jit_auth sends" "$(tr '\n' ' ' <"$WORK/headers-jit_auth.txt")"

# Response sizes (headers + body) with the cookies, for the record.
SIZES=
for contender in "${CONTENDERS[@]}"; do
	SIZES+="$contender $(curl -sS -o /dev/null -w '%{size_header}+%{size_download}' "${WRK_HEADERS[@]}" "${URL[$contender]}") bytes, "
done
echo "   response sizes (header+body): ${SIZES%, }; request Cookie header ${#ALL_COOKIES} bytes"

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

# wrk_requests OUTFILE NAME: the responses wrk counted in OUTFILE, once
# the run is checked to have had no socket errors and no non-2xx/3xx.
wrk_requests() {
	local n
	n=$(awk '/requests in/ { print $1; exit }' "$1")
	[[ -n $n ]] || die "cannot parse wrk output for $2: $(cat "$1")"
	if grep -qE 'Non-2xx or 3xx|Socket errors' "$1"; then
		die "errors in the $2 run: $(grep -E 'Non-2xx or 3xx|Socket errors' "$1")"
	fi
	echo "$n"
}

# bench NAME URL DURATION OUTFILE: one wrk run, checked: no socket errors,
# no non-2xx/3xx, and the upstream served at least as many requests as wrk
# counted (so no response came from the contender itself, e.g. a 302).
# Sets CONNS_PER_1K: new upstream connections per 1000 requests, and
# CPU_US / UP_CPU_US: CPU time (user+system) per request of the
# contender's process and of the upstream during the run. Rounds run one
# at a time, so a process serving several contenders is charged only
# with the one being measured.
bench() {
	local name=$1 url=$2 dur=$3 out=$4 before after requests served conns_before cpu_before up_before cpu_after up_after
	conns_before=$(upstream_conns)
	before=$(upstream_count)
	cpu_before=$(cpu_ticks "${PROC_PID[$name]}")
	up_before=$(cpu_ticks "$UPSTREAM_PID")
	"${LOAD_CPUS[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --latency \
		"${WRK_HEADERS[@]}" "$url" >"$out" 2>&1 || die "wrk failed for $name: $(cat "$out")"
	cpu_after=$(cpu_ticks "${PROC_PID[$name]}")
	up_after=$(cpu_ticks "$UPSTREAM_PID")
	after=$(upstream_count)
	requests=$(wrk_requests "$out" "$name")
	served=$((after - before))
	if ((served < requests)); then
		die "$name: wrk counted $requests responses but the upstream served only $served: some responses did not come from the upstream"
	fi
	CONNS_PER_1K=$(awk -v c="$(($(upstream_conns) - conns_before))" -v n="$served" 'BEGIN { printf "%.1f", 1000 * c / n }')
	CPU_US=$(awk -v t="$((cpu_after - cpu_before))" -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.1f", 1e6 * t / hz / n }')
	UP_CPU_US=$(awk -v t="$((up_after - up_before))" -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.1f", 1e6 * t / hz / n }')
}

# parse OUTFILE: "req/s p50_ms p99_ms"
parse() {
	local rps p50 p99
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$1")
	p50=$(awk '$1 == "50%" { print $2; exit }' "$1")
	p99=$(awk '$1 == "99%" { print $2; exit }' "$1")
	echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== warm-up ($WARMUP each); load average $LOAD_BEFORE"
for contender in "${CONTENDERS[@]}"; do
	bench "$contender" "${URL[$contender]}" "$WARMUP" "$WORK/warmup-$contender.txt"
done

# div A B: A / B to three decimals.
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "== $ROUNDS interleaved rounds: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency"
printf '   %-6s %-12s %12s %10s %10s %22s %12s %14s\n' round contender 'req/s' 'p50 ms' 'p99 ms' 'upstream conns/1k req' 'CPU us/req' 'upstream us/req'
: >"$WORK/results.txt"
# Each round starts one contender later than the round before (bare,
# jit_auth, … then jit_auth, …, bare), so no contender always runs first
# after a pause or always follows the same neighbour: a drift within a
# round spreads over all of them instead of favouring one.
NC=${#CONTENDERS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
	for ((k = 0; k < NC; k++)); do
		contender=${CONTENDERS[$(((round - 1 + k) % NC))]}
		out="$WORK/wrk-$contender-$round.txt"
		bench "$contender" "${URL[$contender]}" "$DURATION" "$out"
		read -r rps p50 p99 < <(parse "$out")
		# Column 9: the proxy's CPU per request over the upstream's. The
		# upstream does the same work for every contender, so its CPU per
		# request measures how fast the shared VM ran during that round;
		# dividing by it removes most of the drift between rounds.
		echo "$contender $rps $p50 $p99 $round $CONNS_PER_1K $CPU_US $UP_CPU_US $(div "$CPU_US" "$UP_CPU_US")" >>"$WORK/results.txt"
		printf '   %-6s %-12s %12s %10s %10s %22s %12s %14s\n' "$round" "$contender" "$rps" "$p50" "$p99" "$CONNS_PER_1K" "$CPU_US" "$UP_CPU_US"
	done
done

# median: the median of the numbers on stdin.
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# col COLUMN CONTENDER: the median over the rounds of one column.
col() { awk -v c="$2" -v col="$1" '$1 == c { print $col }' "$WORK/results.txt" | median; }
# round_ratio A B: the median over the rounds of A's req/s / B's req/s in
# the same round (less sensitive to the VM drifting between rounds).
# With a third argument COLUMN, the same for that column.
round_ratio() {
	awk -v a="$1" -v b="$2" -v col="${3:-2}" '$1 == a { x[$5] = $col } $1 == b { y[$5] = $col } END { for (r in x) if (r in y) print x[r] / y[r] }' "$WORK/results.txt" | median
}

BARE_RPS=$(col 2 bare)
echo
echo "== results: median of $ROUNDS rounds, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $REQUEST request ($((${#WRK_HEADERS[@]} / 2)) headers besides Host), $(nproc) CPUs shared by wrk, the proxy and the upstream$([[ $PIN == 1 ]] && echo " (pinned: the proxy on CPU 0, wrk and the upstream on the rest)"); load average before: $LOAD_BEFORE"
printf '%-26s %10s %10s %10s %14s %16s %22s\n' contender 'req/s' 'p50 ms' 'p99 ms' 'ratio to bare' 'per-round ratio' 'upstream conns/1k req'
for contender in "${CONTENDERS[@]}"; do
	rps=$(col 2 "$contender")
	printf '%-26s %10.0f %10.3f %10.3f %14.3f %16.3f %22.1f\n' "${LABEL[$contender]}" "$rps" "$(col 3 "$contender")" "$(col 4 "$contender")" \
		"$(div "$rps" "$BARE_RPS")" "$(round_ratio "$contender" bare)" "$(col 6 "$contender")"
done
echo "CPU time per request (user+system from /proc/<pid>/stat around each round / its requests; target for jit_auth: at most 1.05x bare):"
printf '%-26s %12s %22s %14s %30s\n' contender 'CPU us/req' 'per-round ratio to bare' 'upstream us/req' 'ratio normalised by upstream'
for contender in "${CONTENDERS[@]}"; do
	printf '%-26s %12.1f %22.3f %14.1f %30.3f\n' "${LABEL[$contender]}" "$(col 7 "$contender")" "$(round_ratio "$contender" bare 7)" "$(col 8 "$contender")" "$(round_ratio "$contender" bare 9)"
done
echo "jit_auth's own work (its CPU per request against request_header + reverse_proxy sending the upstream the same headers, per round): $(round_ratio jit_auth bare_headers 7)x"
echo "a signed assertion's cost (jit_auth + assertion against jit_auth, CPU per request, per round): $(round_ratio jit_assertion jit_auth 7)x"
for contender in "${CONTENDERS[@]}"; do
	[[ $contender == bare ]] && continue
	awk -v a="$(col 2 "$contender")" -v b="$BARE_RPS" -v n="$(nproc)" -v name="$contender" 'BEGIN {
		printf "%s adds %.1f us of wall time per request on this saturated machine (1/req/s difference), about %.0f CPU-us over %d CPUs\n", name, 1e6 / a - 1e6 / b, n * (1e6 / a - 1e6 / b), n
	}'
done
if [[ -n $OAUTH2_BIN ]]; then
	printf 'jit_auth / oauth2-proxy: req/s %s (per round %s), p50 %s, p99 %s\n' \
		"$(div "$(col 2 jit_auth)" "$(col 2 oauth2_proxy)")" "$(round_ratio jit_auth oauth2_proxy)" \
		"$(div "$(col 3 jit_auth)" "$(col 3 oauth2_proxy)")" "$(div "$(col 4 jit_auth)" "$(col 4 oauth2_proxy)")"
elif [[ -n $OAUTH2_MISSING ]]; then
	echo "oauth2-proxy not measured: $OAUTH2_MISSING"
fi

if [[ $PAIRED == 1 ]]; then
	# pair A_URL A_PID B_URL B_PID PREFIX: wrk on A and on B at the same
	# time, each with one thread and half the connections; checked like
	# bench (no errors, every response from the upstream). Sets A_CPU_US
	# and B_CPU_US (CPU per request of each process during the pair) and
	# A_RPS, B_RPS.
	pair() {
		local aurl=$1 apid=$2 burl=$3 bpid=$4 prefix=$5 before after a0 b0 a1 b1 an bn half
		half=$((CONNECTIONS / 2 > 0 ? CONNECTIONS / 2 : 1))
		before=$(upstream_count)
		a0=$(cpu_ticks "$apid")
		b0=$(cpu_ticks "$bpid")
		"${LOAD_CPUS[@]}" wrk -t1 -c"$half" -d"$DURATION" "${WRK_HEADERS[@]}" "$aurl" >"$prefix-a.txt" 2>&1 &
		local wa=$!
		"${LOAD_CPUS[@]}" wrk -t1 -c"$half" -d"$DURATION" "${WRK_HEADERS[@]}" "$burl" >"$prefix-b.txt" 2>&1 &
		local wb=$!
		wait "$wa" || die "wrk failed: $(cat "$prefix-a.txt")"
		wait "$wb" || die "wrk failed: $(cat "$prefix-b.txt")"
		a1=$(cpu_ticks "$apid")
		b1=$(cpu_ticks "$bpid")
		after=$(upstream_count)
		an=$(wrk_requests "$prefix-a.txt" "$aurl (paired)")
		bn=$(wrk_requests "$prefix-b.txt" "$burl (paired)")
		(((after - before) >= an + bn)) || die "a pair: wrk counted $((an + bn)) responses but the upstream served only $((after - before))"
		A_CPU_US=$(awk -v t="$((a1 - a0))" -v hz="$CLK_TCK" -v n="$an" 'BEGIN { printf "%.1f", 1e6 * t / hz / n }')
		B_CPU_US=$(awk -v t="$((b1 - b0))" -v hz="$CLK_TCK" -v n="$bn" 'BEGIN { printf "%.1f", 1e6 * t / hz / n }')
		A_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$prefix-a.txt")
		B_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$prefix-b.txt")
	}

	NP=${#PAIRED_WITH[@]}
	echo
	echo "== warm-up of the twin ($WARMUP each)"
	for contender in bare "${PAIRED_WITH[@]}"; do
		"${LOAD_CPUS[@]}" wrk -t1 -c"$((CONNECTIONS / 2))" -d"$WARMUP" "${WRK_HEADERS[@]}" "${TWIN_URL[$contender]}" >"$WORK/warmup-twin-$contender.txt" 2>&1 ||
			die "wrk failed for the twin's $contender: $(cat "$WORK/warmup-twin-$contender.txt")"
	done
	echo
	if [[ -n $TWIN_CADDY ]]; then
		echo "== $PAIR_ROUNDS paired rounds: each contender on this build and on the twin's ($TWIN_CADDY) at the same time (wrk -t1 -c$((CONNECTIONS / 2)) -d$DURATION each)"
		printf '   %-6s %-14s %-9s %14s %14s %12s %14s %12s\n' round contender '' 'twin us/req' 'this us/req' ratio 'twin req/s' 'this req/s'
	else
		echo "== $PAIR_ROUNDS paired rounds: bare on one Caddy process and a contender on the other at the same time (wrk -t1 -c$((CONNECTIONS / 2)) -d$DURATION each)"
		printf '   %-6s %-14s %-9s %14s %14s %12s %14s %12s\n' round contender 'bare on' 'bare us/req' 'it us/req' ratio 'bare req/s' 'its req/s'
	fi
	: >"$WORK/paired.txt"
	n=0
	for ((round = 1; round <= PAIR_ROUNDS; round++)); do
		for ((k = 0; k < NP; k++)); do
			contender=${PAIRED_WITH[$(((round - 1 + k) % NP))]}
			# Every other pair swaps the processes, so neither process
			# (which one started first, which the profile endpoint is on)
			# always carries the same side.
			if [[ -n $TWIN_CADDY ]]; then
				# Two builds: the processes cannot swap, and the bare
				# control shows what their positions alone make.
				pair "${TWIN_URL[$contender]}" "$TWIN_PID" "${URL[$contender]}" "$CADDY_PID" "$WORK/pair-$round-$contender"
				on=builds bare_cpu=$A_CPU_US it_cpu=$B_CPU_US bare_rps=$A_RPS it_rps=$B_RPS
			elif ((n++ % 2 == 0)); then
				pair "${URL[bare]}" "$CADDY_PID" "${TWIN_URL[$contender]}" "$TWIN_PID" "$WORK/pair-$round-$contender"
				on=first bare_cpu=$A_CPU_US it_cpu=$B_CPU_US bare_rps=$A_RPS it_rps=$B_RPS
			else
				pair "${TWIN_URL[bare]}" "$TWIN_PID" "${URL[$contender]}" "$CADDY_PID" "$WORK/pair-$round-$contender"
				on=twin bare_cpu=$A_CPU_US it_cpu=$B_CPU_US bare_rps=$A_RPS it_rps=$B_RPS
			fi
			ratio=$(div "$it_cpu" "$bare_cpu")
			echo "$contender $round $bare_cpu $it_cpu $ratio $bare_rps $it_rps" >>"$WORK/paired.txt"
			printf '   %-6s %-14s %-9s %14s %14s %12s %14s %12s\n' "$round" "$contender" "$on" "$bare_cpu" "$it_cpu" "$ratio" "$bare_rps" "$it_rps"
		done
	done
	# pcol COLUMN CONTENDER: the median over the pairs of one column of
	# paired.txt; prange: the lowest and highest ratio.
	pcol() { awk -v c="$2" -v col="$1" '$1 == c { print $col }' "$WORK/paired.txt" | median; }
	prange() { awk -v c="$1" '$1 == c { print $5 }' "$WORK/paired.txt" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f-%.3f", lo, hi }'; }
	echo
	if [[ -n $TWIN_CADDY ]]; then
		echo "== paired results: median of $PAIR_ROUNDS pairs per contender; ratio of this build's CPU per request to the twin build's ($TWIN_CADDY)"
		printf '%-26s %14s %14s %22s %16s %16s\n' contender 'twin us/req' 'this us/req' 'CPU ratio to twin' 'lowest-highest' 'req/s ratio'
	else
		echo "== paired results: median of $PAIR_ROUNDS pairs per contender; target for jit_auth: at most 1.05x bare's CPU per request"
		printf '%-26s %14s %14s %22s %16s %16s\n' contender 'bare us/req' 'its us/req' 'CPU ratio to bare' 'lowest-highest' 'req/s ratio'
	fi
	for contender in "${PAIRED_WITH[@]}"; do
		printf '%-26s %14.1f %14.1f %22.3f %16s %16.3f\n' "${LABEL[$contender]}" "$(pcol 3 "$contender")" "$(pcol 4 "$contender")" "$(pcol 5 "$contender")" "$(prange "$contender")" \
			"$(awk -v c="$contender" '$1 == c { print $7 / $6 }' "$WORK/paired.txt" | median)"
	done
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ $PROFILE == 1 ]]; then
	ADMIN_URL=$(envval ADMIN_URL)
	[[ -n $ADMIN_URL ]] || die "no ADMIN_URL from setup"
	secs=${DURATION%s}
	[[ $secs =~ ^[0-9]+$ ]] || secs=5
	for contender in bare jit_auth; do
		url=${URL[$contender]}
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

if [[ $LOGINTIME == 1 ]]; then
	echo
	echo "== login callback timing (bench/logintime, $LOGINS logins per case)"
	go run ./bench/logintime -logins "$LOGINS"
fi

if [[ $MEMORY == 1 ]]; then
	echo
	echo "== memory of live sessions in the session cache (BenchmarkSessionCacheMemory)"
	go test ./caddymodule/ -run '^$' -bench '^BenchmarkSessionCacheMemory$' -benchtime 3x | grep -E '^BenchmarkSessionCacheMemory'
fi
