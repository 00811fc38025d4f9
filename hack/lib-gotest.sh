# shellcheck shell=bash
# Sourced by hack/fuzz.sh and hack/bench.sh.

# list_funcs PATTERN [PKG...]: print "package function" for every test function matching
# PATTERN (e.g. '^Fuzz'), using `go test -list`. Packages default to ./... .
# Fails (non-zero) when a package does not build, so a broken tree is never reported as
# "nothing to run".
list_funcs() {
	local pattern="$1" out line names=() n
	shift
	[[ $# -gt 0 ]] || set -- ./...
	if ! out="$("${GO:-go}" test -count=1 -run '^$' -list "$pattern" "$@" 2>&1)"; then
		printf '%s\n' "$out" >&2
		echo "go test -list ${pattern} failed" >&2
		return 1
	fi
	# Function names come first, then "ok <pkg> <time>" closes the package's block.
	while IFS= read -r line; do
		case "$line" in
		ok*)
			read -r _ pkg _ <<<"$line"
			for n in "${names[@]}"; do printf '%s %s\n' "$pkg" "$n"; done
			names=()
			;;
		"?"* | "") names=() ;;
		*)
			if [[ "$line" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then names+=("$line"); fi
			;;
		esac
	done <<<"$out"
}
