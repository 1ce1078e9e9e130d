#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/fuzz/run.sh SECONDS TARGET...: runs each libFuzzer target for SECONDS
# on a copy of its seed corpus (tests/fuzz/corpus/<target>/, never grown
# itself), then fails if any target crashed, leaked, hung or ran out of
# memory, naming the input that does it. Every target runs even after one
# fails. Logs and reproducers go beside the binaries:
#   <dir>/<target>.log   <dir>/artifacts/<target>/crash-<sha1> (leak-, timeout-, oom-)
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 SECONDS TARGET..." >&2
	exit 2
fi
secs=$1
shift
case $secs in
'' | *[!0-9]* | 0)
	echo "run.sh: SECONDS must be a positive number, not '$secs'" >&2
	exit 2
	;;
esac

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/kage-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT

# The longest input worth trying: a little above what each target reads.
max_len() {
	case $1 in
	fuzz_quantity) echo 128 ;;
	fuzz_cidr) echo 256 ;;
	fuzz_framer) echo 4096 ;;
	fuzz_kubeconfig | fuzz_error) echo 8192 ;;
	*) echo 16384 ;;
	esac
}

# The figure of a libFuzzer log line ("#123 DONE cov: 45 ft: 67 corp: 8/9b ...").
field() {
	sed -n "s/.* $1: \([0-9][0-9]*\).*/\1/p" <<<"$2"
}

failed=()
for bin in "$@"; do
	name=$(basename "$bin")
	seeds=$here/corpus/$name
	if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
		echo "$name: FAILED: no binary $bin or no seed corpus $seeds" >&2
		failed+=("$name")
		continue
	fi
	out=$(cd "$(dirname "$bin")" && pwd)
	art=$out/artifacts/$name
	log=$out/$name.log
	corpus=$work/$name/corpus
	mkdir -p "$art" "$corpus" "$work/$name/tmp"
	cp "$seeds"/* "$corpus"/
	dict=()
	if [ -f "$here/dict/$name.dict" ]; then
		dict=(-dict="$here/dict/$name.dict")
	fi

	# Hangs (-timeout), leaks (LeakSanitizer at the end of each input),
	# memory (-rss_limit_mb, and -malloc_limit_mb which follows it) and
	# undefined behaviour (built not to recover) all stop the run.
	TMPDIR=$work/$name/tmp \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$bin" -max_total_time="$secs" -max_len="$(max_len "$name")" -timeout=5 \
		-rss_limit_mb=1024 -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$art/" \
		${dict[@]+"${dict[@]}"} "$corpus" </dev/null >"$log" 2>&1
	rc=$?

	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
	if [ $rc -eq 0 ]; then
		printf '%s: ok: %s runs in %ss, %s exec/s, cov %s ft %s, corpus %s (from %s seeds), peak rss %s MB\n' \
			"$name" "${runs:-?}" "$secs" "${speed:-?}" "$(field cov "$last")" "$(field ft "$last")" \
			"$(field corp "$last")" "$(find "$seeds" -type f | wc -l)" "${rss:-?}"
		continue
	fi

	failed+=("$name")
	what=crash
	if grep -q 'ERROR: libFuzzer: timeout' "$log"; then
		what=timeout
	elif grep -q 'ERROR: LeakSanitizer' "$log"; then
		what=leak
	elif grep -qE 'ERROR: libFuzzer: (out-of-memory|malloc)' "$log"; then
		what="out of memory"
	elif grep -q 'runtime error:' "$log"; then
		what='undefined behaviour'
	fi
	repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	echo "$name: FAILED ($what, exit $rc); the end of $log:" >&2
	grep -vE '^#[0-9]+|^INFO:|^\s*$' "$log" | tail -n 60 >&2
	if [ -n "$repro" ]; then
		echo "$name: reproducer: $repro" >&2
		echo "$name: rerun it with: $bin $repro" >&2
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: all ${#} targets passed ($secs s each)"
