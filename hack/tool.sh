#!/usr/bin/env bash
# hack/tool.sh NAME...: make sure each pinned tool is built, link it into ./bin, print its path.
#
# Tools are built with `go install MODULE/CMD@VERSION` (versions: hack/versions.env) into a
# cache OUTSIDE the clone, one directory per tool and version:
#     ${XDG_CACHE_HOME:-$HOME/.cache}/slipstream/tools/<name>-<version>/<binary>
# so a fresh clone (CI) on the same machine reuses them, and a version bump builds afresh
# without touching the old one. ./bin/<binary> is a symlink into that cache.
# Idempotent and safe to run concurrently (one flock per tool version).
#
# Names: controller-gen golangci-lint nats-server nats helm
# Env: SLIPSTREAM_CACHE overrides the cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/slipstream).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/versions.env
source "${root}/hack/versions.env"
cache="${SLIPSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slipstream}"
localbin="${LOCALBIN:-${root}/bin}"

usage() { echo "usage: $0 {controller-gen|golangci-lint|nats-server|nats|helm}..." >&2; exit 2; }

# resolve NAME -> "binary package version"
resolve() {
	case "$1" in
	controller-gen) echo "controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen ${CONTROLLER_TOOLS_VERSION}" ;;
	golangci-lint) echo "golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint ${GOLANGCI_LINT_VERSION}" ;;
	nats-server) echo "nats-server github.com/nats-io/nats-server/v2 ${NATS_SERVER_VERSION}" ;;
	nats | natscli) echo "nats github.com/nats-io/natscli/nats ${NATSCLI_VERSION}" ;;
	helm) echo "helm helm.sh/helm/v3/cmd/helm ${HELM_VERSION}" ;;
	*) return 1 ;;
	esac
}

ensure() {
	local name="$1" spec bin pkg version dir
	spec="$(resolve "$name")" || { echo "tool.sh: unknown tool '${name}'" >&2; usage; }
	read -r bin pkg version <<<"$spec"
	dir="${cache}/tools/${bin}-${version}"
	mkdir -p "${cache}/tools" "$localbin"
	if [[ ! -x "${dir}/${bin}" ]]; then
		(
			flock 9
			if [[ ! -x "${dir}/${bin}" ]]; then
				local tmp start
				tmp="$(mktemp -d "${cache}/tools/.${bin}-${version}.XXXXXX")"
				trap 'rm -rf "$tmp"' EXIT
				start=$SECONDS
				echo "tool.sh: building ${pkg}@${version} (first time on this machine; may take minutes)" >&2
				# Run outside the project module so its go.mod/go.work cannot interfere.
				(cd "$tmp" && GOBIN="${tmp}/bin" GOWORK=off go install "${pkg}@${version}") >&2
				mkdir -p "$dir"
				mv "${tmp}/bin/${bin}" "${dir}/${bin}.new"
				mv -f "${dir}/${bin}.new" "${dir}/${bin}"
				echo "tool.sh: ${bin} ${version} built in $((SECONDS - start))s -> ${dir}" >&2
			fi
		) 9>"${cache}/tools/.${bin}-${version}.lock"
	fi
	ln -sfn "${dir}/${bin}" "${localbin}/${bin}"
	echo "${localbin}/${bin}"
}

[[ $# -gt 0 ]] || usage
for t in "$@"; do ensure "$t"; done
