#!/usr/bin/env bash
# bench/run.sh: run calld's end-to-end benchmark suite once and keep its raw
# output as docs/bench/e2e-<date>.txt (plus a benchstat summary when
# benchstat is available).
#
#   bench/run.sh            default sizes (about 3 minutes on 2 cores)
#   bench/run.sh --full     the issue's large sizes (-bench.full)
#   BENCH='Discard' bench/run.sh   only the benchmarks matching a regexp
#   COUNT=5 bench/run.sh    repeat each benchmark (for benchstat's spread)
#
# Not run by CI. benchstat is installed into $(go env GOPATH)/bin only if it
# is missing and the Go module proxy can be reached; the suite runs without it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

extra=()
suffix=""
if [[ "${1:-}" == "--full" ]]; then
	extra+=(-args -bench.full)
	suffix="-full"
fi
pattern=${BENCH:-.}
count=${COUNT:-1}
out="docs/bench/e2e-$(date -u +%Y-%m-%d)${suffix}.txt"
mkdir -p docs/bench

cmd=(go test ./bench -run '^$' -bench "$pattern" -benchmem -count "$count" -timeout 60m "${extra[@]}")
{
	echo "# command: ${cmd[*]}"
	echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version)"
	echo "# /proc/loadavg before: $(cat /proc/loadavg)"
} >"$out"
"${cmd[@]}" 2>&1 | tee -a "$out.raw"
# Keep the benchmark lines and the go test header/footer; drop anything else
# written to the terminal (logs of other packages).
grep -E '^(goos|goarch|pkg|cpu|Benchmark|PASS|FAIL|ok|---|\s+bench_test)' "$out.raw" >>"$out" || true
rm -f "$out.raw"
echo "# /proc/loadavg after: $(cat /proc/loadavg)" >>"$out"

bs=$(command -v benchstat || true)
if [[ -z "$bs" ]]; then
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
