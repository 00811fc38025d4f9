#!/usr/bin/env bash
# hack/bench.sh (make bench): run every benchmark, each area in its own process, and write
# the report: docs/benchmarks.md and the restart plot docs/bench-restart.png.
#
# The jobs (packages, benchmarks, sizes) are listed in hack/benchreport/plan.go, the report
# rows and goals in hack/benchreport/rows.go. A Benchmark function the plan does not list
# still runs, in a job of its own. The raw outputs and run.json stay in BENCH_DIR.
#
#   QUICK=1          scaled-down sizes and durations (a smoke run of a few minutes); the
#                    report goes to BENCH_DIR, not docs/, unless BENCH_DOCS is set
#   BENCH_ONLY=a,b   run only these job IDs (see plan.go); the report marks the run partial
#   BENCH_DIR=DIR    raw results (default _output/bench, or _output/bench-quick with QUICK=1)
#   BENCH_DOCS=DIR   where benchmarks.md and bench-restart.png go (default docs)
#
# A full run takes about 20 minutes on 2 idle cores (40 at load 15-20) and needs about 4 GiB of free disk
# under TMPDIR (the 5M-key bucket and folds).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

quick=()
dir="${BENCH_DIR:-_output/bench}"
docs="${BENCH_DOCS:-docs}"
if [[ "${QUICK:-}" == 1 ]]; then
	quick=(-quick)
	dir="${BENCH_DIR:-_output/bench-quick}"
	docs="${BENCH_DOCS:-$dir}"
elif [[ -n "${QUICK:-}" && "${QUICK}" != 0 ]]; then
	echo "bench: QUICK=${QUICK}: want 1 or 0" >&2
	exit 2
fi
only=()
if [[ -n "${BENCH_ONLY:-}" ]]; then
	only=(-only "$BENCH_ONLY")
fi

mkdir -p "$dir"
"${GO:-go}" build -o "$dir/benchreport" ./hack/benchreport
status=0
"$dir/benchreport" run -dir "$dir" "${quick[@]}" "${only[@]}" || status=$?
if [[ ! -f "$dir/run.json" ]]; then
	echo "bench: the run did not finish (no $dir/run.json)" >&2
	exit 1
fi
"$dir/benchreport" report -dir "$dir" -md "$docs/benchmarks.md" -png "$docs/bench-restart.png"
echo "bench: wrote $docs/benchmarks.md and $docs/bench-restart.png (raw outputs in $dir)"
exit "$status"
