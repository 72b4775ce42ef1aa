#!/usr/bin/env bash
# bench/instructions.sh: the instructions Caddy executes per request, bare
# reverse_proxy against jit_auth + reverse_proxy, counted by valgrind's
# callgrind rather than timed. CPU time per request (bench/run.sh) moves
# with the shared VM's speed by several per cent between rounds and
# between VMs; an instruction count does not, so it tells a change of a
# few hundred instructions on the authenticated path (0.1 %) apart, and
# names the functions it lands in.
#
#   bench/instructions.sh
#
# It starts the same upstream, provider and Caddy as bench/run.sh
# (bench/setup, which signs in through jit_auth for the session cookie),
# then a second Caddy with the same sites, storage and store on other
# ports, under callgrind, with the background passes (revocation poll,
# user status refresh) moved an hour away so that none falls into a
# phase. bench/seqclient then sends each contender REQUESTS sequential
# keep-alive requests with the bench's minimal request (what wrk sends
# plus the Cookie and Accept headers), the contenders alternating for
# PHASES phases each; callgrind's counters are zeroed before a phase and
# dumped after it, so each dump holds that phase alone. It prints the
# instructions per request of each phase, the ratio of the medians, and
# the functions whose self count differs most between the contenders.
#
# Settings (environment):
#   REQUESTS=6000 PHASES=2 WARMUP=500   requests per phase, phases per
#                 contender, unmeasured requests per contender first
#   CONTENDERS="bare jit_auth"   any of bare, jit_auth, bare_headers,
#                 jit_assertion (bench/run.sh says what each is); the
#                 first is the one the others are compared with
#   GOGC=off      the program's own work; GOGC=100 counts the garbage
#                 collector's share too (its cycles then fall into the
#                 phases unevenly: use more phases)
#   LOG=discard   the Caddy log's output, as in bench/run.sh; stderr
#                 writes it to caddy-counted.log at WARN (nothing per
#                 request). Caddy's reverse_proxy encodes the upstream
#                 request, headers included, into a logger for every
#                 request unless the log is discarded (zap's Logger.With
#                 is eager), so with LOG=stderr every contender costs more,
#                 and each header more again
#   TOP=25        functions listed
#   KEEP_WORK=1   keep the temporary directory (callgrind's dumps, for
#                 callgrind_annotate)
#
# Needs valgrind (Debian: apt-get install -y valgrind; 3.19 works). Go
# programs run under it with GODEBUG=asyncpreemptoff=1 (callgrind asserts
# on the preemption signal) and cpu.rdtscp=off (valgrind cannot decode
# RDTSCP). Under callgrind Caddy runs about 50 times slower: the default
# settings take about 5 minutes.
set -euo pipefail

REQUESTS=${REQUESTS:-6000}
PHASES=${PHASES:-2}
WARMUP=${WARMUP:-500}
TOP=${TOP:-25}
LOG=${LOG:-discard}
[[ $LOG == discard || $LOG == stderr ]] || { echo "instructions.sh: LOG must be discard or stderr, not $LOG" >&2; exit 1; }
read -ra CONTENDERS <<<"${CONTENDERS:-bare jit_auth}"
export GOGC=${GOGC:-off}

cd "$(dirname "$0")/.."

die() { echo "instructions.sh: $*" >&2; exit 1; }
for c in valgrind callgrind_control callgrind_annotate curl go awk; do
	command -v "$c" >/dev/null || die "$c not found (Debian: apt-get install -y valgrind curl)"
done
((${#CONTENDERS[@]} >= 2)) || die "CONTENDERS needs two names at least, the first to compare with"
for c in "${CONTENDERS[@]}"; do
	[[ $c == bare || $c == jit_auth || $c == bare_headers || $c == jit_assertion ]] ||
		die "CONTENDERS: $c is not bare, jit_auth, bare_headers or jit_assertion"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jitauth-instructions.XXXXXX")
PIDS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# SIGKILL for Caddy under callgrind: a signal it handles trips an
	# assertion in callgrind 3.19's signal bookkeeping on the way out.
	[[ -n ${COUNTED:-} ]] && kill -9 "$COUNTED" 2>/dev/null || true
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null || true
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

echo "== building into $WORK"
go build -o "$WORK/caddy" ./cmd/caddy
go build -o "$WORK/upstream" ./bench/upstream
go build -o "$WORK/setup" ./bench/setup
go build -o "$WORK/seqclient" ./bench/seqclient

# waitfile FILE PID WHAT: wait up to 60s for FILE, failing early if PID died.
waitfile() {
	for _ in $(seq 600); do
		[[ -s $1 ]] && return 0
		kill -0 "$2" 2>/dev/null || die "$3 exited before it was ready"
		sleep 0.1
	done
	die "$3 not ready after 60s"
}

echo "== starting the upstream, the identity provider and Caddy; signing in"
"$WORK/upstream" -addr 127.0.0.1:0 -addr-file "$WORK/upstream.addr" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
waitfile "$WORK/upstream.addr" "${PIDS[-1]}" upstream
"$WORK/setup" -caddy "$WORK/caddy" -upstream "$(<"$WORK/upstream.addr")" -dir "$WORK" -out "$WORK/setup.env" >"$WORK/setup.log" 2>&1 &
PIDS+=($!)
waitfile "$WORK/setup.env" "${PIDS[-1]}" "bench/setup (see $WORK/setup.log)"
envval() { sed -n "s/^$1=//p" "$WORK/setup.env"; }
COOKIE=$(envval COOKIE)
declare -A FIRST_URL=([bare]=$(envval BARE_URL) [jit_auth]=$(envval AUTH_URL) [bare_headers]=$(envval HEADERS_URL) [jit_assertion]=$(envval ASSERT_URL))

# The counted Caddy: setup's Caddyfile with a free port for each site and
# the background passes an hour apart. The ports lie below the kernel's
# range for outgoing connections, where no connection of the running
# processes holds one (Caddy's log is discarded, so a port it cannot
# bind would only show as its exit).
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
read -r EPHEMERAL _ </proc/sys/net/ipv4/ip_local_port_range
((EPHEMERAL > 12000)) || die "the kernel's outgoing port range starts at $EPHEMERAL: no room for the counted sites below it"
declare -A PORT=()
cp "$WORK/Caddyfile" "$WORK/Caddyfile.counted"
for c in bare jit_auth bare_headers jit_assertion; do
	old=${FIRST_URL[$c]#http://127.0.0.1:}
	old=${old%/}
	while :; do
		p=$((EPHEMERAL - 10000 + RANDOM % 10000))
		listening "$p" || [[ " ${PORT[*]} " == *" $p "* ]] || break
	done
	PORT[$c]=$p
	sed -i "s/^http:\/\/:$old {/http:\/\/:$p {/" "$WORK/Caddyfile.counted"
done
sed -i 's/^\t\tstore sqlite \(.*\)$/\t\tstore sqlite \1\n\t\tuser_status_refresh 1h\n\t\trevocation_poll 1h/' "$WORK/Caddyfile.counted"
grep -q 'revocation_poll 1h' "$WORK/Caddyfile.counted" || die "could not set the background passes in $WORK/Caddyfile.counted"
if [[ $LOG == stderr ]]; then
	sed -i 's/^\t\toutput discard$/\t\toutput stderr/; s/^\t\tlevel ERROR$/\t\tlevel WARN/' "$WORK/Caddyfile.counted"
fi

echo "== starting Caddy under callgrind (a minute or two)"
HOME=$WORK XDG_CONFIG_HOME=$WORK/config XDG_DATA_HOME=$WORK/data \
	GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off \
	valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
	"$WORK/caddy" run --config "$WORK/Caddyfile.counted" --adapter caddyfile >"$WORK/caddy-counted.log" 2>&1 &
COUNTED=$!
PIDS+=($COUNTED)
for c in "${CONTENDERS[@]}"; do
	for _ in $(seq 600); do
		kill -0 "$COUNTED" 2>/dev/null || die "Caddy under callgrind exited (see $WORK/caddy-counted.log; its log is discarded: LOG=stderr shows it): $("$WORK/caddy" validate --config "$WORK/Caddyfile.counted" --adapter caddyfile 2>&1 | tail -1)"
		[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "http://127.0.0.1:${PORT[$c]}/") == 200 ]] && break
		sleep 1
	done
	[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "http://127.0.0.1:${PORT[$c]}/") == 200 ]] ||
		die "$c under callgrind does not answer 200 with the session cookie after 10 minutes"
done

for c in "${CONTENDERS[@]}"; do
	"$WORK/seqclient" -addr "127.0.0.1:${PORT[$c]}" -n "$WARMUP" -cookie "$COOKIE"
done
# dumps: how many dumps callgrind has written (callgrind.out.PID.1, .2, …).
dumps() {
	local f=("$WORK"/callgrind.out."$COUNTED".*)
	[[ -e ${f[0]} ]] && echo "${#f[@]}" || echo 0
}
echo "== $PHASES phases of $REQUESTS requests per contender, alternating"
declare -A DUMPS=()
for ((ph = 1; ph <= PHASES; ph++)); do
	for c in "${CONTENDERS[@]}"; do
		callgrind_control -z "$COUNTED" >/dev/null 2>&1
		"$WORK/seqclient" -addr "127.0.0.1:${PORT[$c]}" -n "$REQUESTS" -cookie "$COOKIE"
		before=$(dumps)
		callgrind_control -d "$c-$ph" "$COUNTED" >/dev/null 2>&1
		for _ in $(seq 100); do
			(($(dumps) > before)) && break
			sleep 0.1
		done
		(($(dumps) > before)) || die "callgrind wrote no dump for phase $ph of $c"
		dump=$WORK/callgrind.out.$COUNTED.$(dumps)
		DUMPS[$c]+=" $dump"
		total=$(awk '/^summary:/ { print $2; exit }' "$dump")
		printf '   phase %d  %-14s %10.0f instructions per request\n' "$ph" "$c" "$(awk -v t="$total" -v n="$REQUESTS" 'BEGIN { print t / n }')"
	done
done

# Self counts per function, summed over a contender's phases, per request.
selfcounts() {
	local f
	for f in $1; do
		callgrind_annotate --auto=no --threshold=100 "$f" 2>/dev/null
	done | awk -v n="$((REQUESTS * PHASES))" '
		$1 ~ /^[0-9,]+$/ && $2 == "(" || $1 ~ /^[0-9,]+$/ && $2 ~ /^\(/ {
			c = $1; gsub(",", "", c)
			name = $0
			sub(/^[ 0-9,]+\([ 0-9.]+%\) +/, "", name)
			sub(/ \[.*$/, "", name)
			sub(/^.*\.(go|s|c):/, "", name)
			if (name == "PROGRAM TOTALS") next
			s[name] += c
		}
		END { for (k in s) printf "%.1f\t%s\n", s[k] / n, k }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
perreq() { for f in $1; do awk -v n="$REQUESTS" '/^summary:/ { print $2 / n; exit }' "$f"; done | median; }

BASE=${CONTENDERS[0]}
echo "== median instructions per request (GOGC=$GOGC)"
base=$(perreq "${DUMPS[$BASE]}")
printf '   %-14s %10.0f  1.000\n' "$BASE" "$base"
for c in "${CONTENDERS[@]:1}"; do
	v=$(perreq "${DUMPS[$c]}")
	printf '   %-14s %10.0f  %.3f\n' "$c" "$v" "$(awk -v v="$v" -v b="$base" 'BEGIN { print v / b }')"
done
selfcounts "${DUMPS[$BASE]}" >"$WORK/self-$BASE.tsv"
for c in "${CONTENDERS[@]:1}"; do
	selfcounts "${DUMPS[$c]}" >"$WORK/self-$c.tsv"
	echo "== functions whose own instructions per request differ most, $c minus $BASE"
	printf '   %9s %9s %9s  %s\n' difference "$BASE" "$c" function
	awk -F'\t' 'FNR == NR { b[$2] = $1; next } { o[$2] = $1 }
		END {
			for (k in b) if (!(k in o)) o[k] = 0
			for (k in o) { d = o[k] - b[k]; printf "%.1f\t%.1f\t%.1f\t%s\n", d, b[k], o[k], k }
		}' "$WORK/self-$BASE.tsv" "$WORK/self-$c.tsv" |
		sort -t$'\t' -k1,1 -g | awk -F'\t' -v top="$TOP" '{ l[NR] = $0 } END {
			# the largest increases, then the largest decreases
			for (i = NR; i > NR - top && i > 0; i--) { split(l[i], f, "\t"); if (f[1] > 0) printf "   %+9.1f %9.1f %9.1f  %s\n", f[1], f[2], f[3], f[4] }
			for (i = 1; i <= 10 && i <= NR; i++) { split(l[i], f, "\t"); if (f[1] < 0) printf "   %+9.1f %9.1f %9.1f  %s\n", f[1], f[2], f[3], f[4] }
		}'
	echo "   module's own functions (github.com/jitauth/...): $(awk -F'\t' '$2 ~ /jitauth/ { s += $1 } END { printf "%.0f", s }' "$WORK/self-$c.tsv") instructions per request"
done
