#!/usr/bin/env bash
# bench/fuzz.sh: run every fuzz target of the module, one after another,
# for FUZZTIME each, and fail on the first finding.
#
#   bench/fuzz.sh                 # 60 s per target (33 targets: ~35 min)
#   FUZZTIME=2s bench/fuzz.sh     # what CI runs (under 2 min)
#   FUZZ='Cookie|Said' bench/fuzz.sh   # only targets whose name matches
#   FUZZ_BUILD_ONLY=1 bench/fuzz.sh     # only build (fills Go's build cache)
#
# A finding fails the run: go test writes the input that failed to
# <package>/testdata/fuzz/<Target>/ (commit it with the fix, and it
# becomes a regression case that every plain `go test` runs). The
# corpus the fuzzer grows while it explores stays in Go's cache
# ($(go env GOCACHE)/fuzz), so a later run starts where this one left.
# Targets are found with the test binary's -test.list, so a new Fuzz
# function is picked up without editing this script.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-60s}
FUZZ=${FUZZ:-.}

# Each package's test binary is built once, with the fuzzing
# instrumentation `go test -fuzz` adds; it lists the package's targets and
# runs each of them from the package's directory, with the corpus cache go
# test would use: the same run as `go test -run '^$' -fuzz <target>
# <package>`, without linking a binary again for every target, nor a
# plain one (go test -list) to find them.
bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT
targets=()
for pkg in $(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	# Only packages with a Fuzz function FUZZ matches: building the
	# binary is slow.
	wanted=
	for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/p' "$dir"/*_test.go); do
		if [[ $name =~ $FUZZ ]]; then
			wanted=1
		fi
	done
	[ -n "$wanted" ] || continue
	bin=$bins/$(echo "$pkg" | tr / _).test
	go test -c -fuzz . -o "$bin" "$pkg"
	for name in $(cd "$dir" && "$bin" -test.list '^Fuzz' | grep '^Fuzz' || true); do
		if [[ $name =~ $FUZZ ]]; then
			targets+=("$pkg $name")
		fi
	done
done
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz.sh: no fuzz target matches FUZZ=$FUZZ" >&2
	exit 1
fi
if [ -n "${FUZZ_BUILD_ONLY:-}" ]; then
	# Only the builds: their instrumented packages stay in Go's build
	# cache, so a later run links its binaries without compiling again
	# (CI runs this beside the plain tests, which leave a CPU idle).
	echo "fuzz.sh: built the test binaries of ${#targets[@]} targets"
	exit 0
fi

echo "fuzzing ${#targets[@]} targets for $FUZZTIME each"
start=$(date +%s)
flakes=0
fuzzcache=$(go env GOCACHE)/fuzz
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "== $name ($pkg)"
	pkgdir=$(go list -f '{{.Dir}}' "$pkg")
	dir=$pkgdir/testdata/fuzz/$name
	bin=$bins/$(echo "$pkg" | tr / _).test
	log=$(mktemp)
	if ! (cd "$pkgdir" && "$bin" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$FUZZTIME" \
		-test.fuzzcachedir "$fuzzcache/$pkg") 2>&1 | tee "$log"; then
		# Go 1.26's fuzz coordinator can end a run at -fuzztime with a
		# bare "context deadline exceeded" and no input at fault
		# (golang/go#75804, fixed in Go 1.27): a finding always writes
		# its input to testdata/fuzz/<Target>/, so only that fails.
		if grep -q 'context deadline exceeded' "$log" && [ -z "$(find "$dir" -newer "$log" -type f 2>/dev/null)" ]; then
			echo "fuzz.sh: $name ended with \"context deadline exceeded\" and no failing input (golang/go#75804); not a finding"
			flakes=$((flakes + 1))
		else
			rm -f "$log"
			echo "fuzz.sh: $name in $pkg failed; a failing input is in $dir/ (go test -run '$name' $pkg replays it)" >&2
			exit 1
		fi
	fi
	rm -f "$log"
done
echo "all ${#targets[@]} fuzz targets ran $FUZZTIME each without a finding ($(($(date +%s) - start)) s; $flakes ended by golang/go#75804)"
