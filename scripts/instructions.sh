#!/usr/bin/env bash
# instructions.sh counts the CPU instructions one iteration of a benchmark
# costs, with valgrind's callgrind: unlike ns/op, the count is the same from
# run to run whatever else the machine is doing, so it settles small
# before/after questions. Linux only; needs valgrind.
#
#   scripts/instructions.sh ./log-processor/internal/parser 'BenchmarkParse/valid$'
#
# It runs the benchmark for 2,000 and 12,000 iterations and prints the
# difference per iteration, so set-up costs cancel out. Garbage collection
# runs as usual (GOGC=100) on one P; asynchronous preemption is off because
# callgrind cannot follow its signals.
set -euo pipefail
if [ $# -ne 2 ]; then
	echo "usage: $0 PACKAGE_DIR BENCH_REGEXP" >&2
	exit 2
fi
command -v valgrind >/dev/null || { echo "$0: valgrind is not installed" >&2; exit 1; }
dir=$1 re=$2
bin=$(mktemp)
trap 'rm -f "$bin"' EXIT
(cd "$dir" && go test -c -o "$bin" .)
run() {
	(cd "$dir" && GODEBUG=asyncpreemptoff=1 GOGC=100 GOMAXPROCS=1 valgrind --tool=callgrind \
		--callgrind-out-file=/dev/null "$bin" -test.run '^$' -test.bench "$re" \
		-test.benchtime="$1x" 2>&1) | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
a=$(run 2000)
b=$(run 12000)
echo "$re: $(((b - a) / 10000)) instructions/op"
