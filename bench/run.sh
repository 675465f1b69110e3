#!/usr/bin/env bash
# bench/run.sh: calld's benchmarks. Not run by CI.
#
#   bash bench/run.sh [AB FLAGS]   calld against the baseline (bench/baseline,
#                                  the bare gotd program a user would write),
#                                  side by side: builds both, runs bench/ab,
#                                  prints the table and writes it to
#                                  docs/bench/ab-<date>-<commit>.txt (5 rounds:
#                                  under 2 minutes on 2 quiet cores, about 5
#                                  at load 13; docs/performance.md)
#   bash bench/run.sh quick        the same, 2 rounds, bursts of 500, the
#                                  SIGKILL run with 500 calls (under a
#                                  minute; prints only, writes nothing)
#   bash bench/run.sh suite [--full]   the `go test ./bench -bench` suite,
#                                  raw output in docs/bench/e2e-<date>.txt
#                                  (--full: the large sizes, -bench.full;
#                                  BENCH=regexp and COUNT=n select and repeat)
#
# AB FLAGS go to bench/ab: -rounds, -bursts, -singles, -kill, -quiet,
# -baseline-args (go run ./bench/ab -h).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bin=""
trap '[[ -z "$bin" ]] || rm -rf "$bin"' EXIT

ab() {
	bin=$(mktemp -d)
	go build -o "$bin/calld" ./cmd/calld
	go build -o "$bin/baseline" ./bench/baseline
	go build -o "$bin/ab" ./bench/ab
	"$bin/ab" -calld "$bin/calld" -baseline "$bin/baseline" "$@"
}

# suite runs the benchmark suite once and keeps its raw output (plus a
# benchstat summary when benchstat is available). benchstat is installed
# into $(go env GOPATH)/bin only if it is missing and the Go module proxy
# can be reached; the suite runs without it.
suite() {
	local extra=() suffix=""
	if [[ "${1:-}" == "--full" ]]; then
		extra+=(-args -bench.full)
		suffix="-full"
	fi
	local pattern=${BENCH:-.} count=${COUNT:-1}
	local out="docs/bench/e2e-$(date -u +%Y-%m-%d)${suffix}.txt"
	mkdir -p docs/bench
	local cmd=(go test ./bench -run '^$' -bench "$pattern" -benchmem -count "$count" -timeout 60m "${extra[@]}")
	{
		echo "# command: ${cmd[*]}"
		echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
		echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version)"
		echo "# /proc/loadavg before: $(cat /proc/loadavg)"
	} >"$out"
	"${cmd[@]}" 2>&1 | tee -a "$out.raw"
	# Keep the benchmark lines and the go test header/footer; drop anything
	# else written to the terminal (logs of other packages).
	grep -E '^(goos|goarch|pkg|cpu|Benchmark|PASS|FAIL|ok|---|\s+bench_test)' "$out.raw" >>"$out" || true
	rm -f "$out.raw"
	echo "# /proc/loadavg after: $(cat /proc/loadavg)" >>"$out"

	local bs
	bs=$(command -v benchstat || true)
	if [[ -z "$bs" ]]; then
		local gobin
		gobin=$(go env GOPATH)/bin
		if [[ -x "$gobin/benchstat" ]]; then
			bs=$gobin/benchstat
		elif go install golang.org/x/perf/cmd/benchstat@latest >/dev/null 2>&1; then
			bs=$gobin/benchstat
		fi
	fi
	if [[ -n "$bs" ]]; then
		{
			echo
			echo "# benchstat $out"
			"$bs" "$out" 2>&1 | sed 's/^/# /'
		} >>"$out.stat" || true
		cat "$out.stat" >>"$out"
		rm -f "$out.stat"
	else
		echo "# benchstat not available: raw results only" >>"$out"
	fi
	echo "wrote $out"
}

case "${1:-}" in
suite)
	shift
	suite "$@"
	;;
quick)
	shift
	ab -rounds 2 -bursts 500 -singles 20 -kill 500 -quiet 2s "$@"
	;;
*)
	# The commit in the name: a second run on the same day does not
	# overwrite the first one's table.
	ab -out "docs/bench/ab-$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD 2>/dev/null || echo unknown).txt" "$@"
	;;
esac
