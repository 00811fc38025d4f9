#!/usr/bin/env bash
# hack/bench.sh [PKG...]: run the benchmarks of every package that has any (default ./...),
# BENCHTIME (default 1x: a smoke run that proves they work) each, with -benchmem.
# BENCH selects benchmarks (go test -bench regexp, default "."). Environment such as
# SLIPSTREAM_BENCH_KEYS (the size knob the benchmarks read) passes through unchanged.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=hack/lib-gotest.sh
source hack/lib-gotest.sh

benchtime="${BENCHTIME:-1x}"
pkgs="$(list_funcs '^Benchmark' "$@" | awk '{print $1}' | sort -u)"
if [[ -z "$pkgs" ]]; then
	echo "bench: no Benchmark* functions in the tree yet: nothing to run"
	exit 0
fi
echo "bench: SLIPSTREAM_BENCH_KEYS=${SLIPSTREAM_BENCH_KEYS:-<unset: benchmark defaults>} BENCHTIME=${benchtime}"
# shellcheck disable=SC2086 # one package per word
"${GO:-go}" test -count=1 -run '^$' -bench "${BENCH:-.}" -benchtime "$benchtime" -benchmem $pkgs
