#!/usr/bin/env bash
# hack/fuzz.sh [PKG...]: run every Fuzz* target of the given packages (default ./...) for
# FUZZTIME (default 10000x, an execution count) each, one `go test -fuzz` run per target (go test fuzzes one target
# of one package at a time). The seed corpora already run as plain tests in `make test`; this
# adds a short bounded fuzzing pass. A crasher is written to the package's testdata/fuzz/ by
# go test: commit it, it becomes a regression test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=hack/lib-gotest.sh
source hack/lib-gotest.sh

# A count rather than a duration: with a duration, Go 1.26's coordinator can report its own
# -fuzztime deadline as a failure ("context deadline exceeded", go.dev/issue/75804, fixed in
# Go 1.27) when a loaded machine starves the workers at the deadline. A count has no deadline.
fuzztime="${FUZZTIME:-10000x}"
targets="$(list_funcs '^Fuzz' "$@")"
if [[ -z "$targets" ]]; then
	echo "fuzz: no Fuzz* targets in the tree yet: nothing to fuzz"
	exit 0
fi
count=$(wc -l <<<"$targets")
echo "fuzz: ${count} target(s), ${fuzztime} each"
while read -r pkg fn; do
	echo "fuzz: ${pkg} ${fn}"
	"${GO:-go}" test -count=1 -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" "$pkg" </dev/null
done <<<"$targets"
