#!/usr/bin/env bash
# hack/seaweedfs.sh: make sure the SeaweedFS `weed` binary (a real S3-compatible server for the
# pkg/export transport tests) is built, link it into ./bin/weed, print its path.
#
# `go install github.com/seaweedfs/seaweedfs/weed@...` is refused (its go.mod has a replace), so
# the binary is built from a throwaway module that requires seaweedfs at SEAWEEDFS_VERSION and
# copies its one replace (go-bip39). Cache, outside the clone so fresh clones (CI) reuse it:
#     ${XDG_CACHE_HOME:-$HOME/.cache}/slipstream/tools/weed-<version>/weed
#     ${XDG_CACHE_HOME:-$HOME/.cache}/slipstream/tools/.build-weed-<version>/  (the module)
# Cost on 2 cores: about 4 minutes cold (a ~230 MB binary); warm: instant.
# Idempotent and safe to run concurrently (one flock per version).
#
# Env: SEAWEEDFS_VERSION (default below, or hack/versions.env when it pins one),
#      SLIPSTREAM_CACHE (cache root), LOCALBIN (default ./bin), GO (default go).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -f "${root}/hack/versions.env" ]]; then
	# shellcheck source=versions.env
	source "${root}/hack/versions.env"
fi
# The seaweedfs pseudo-version verified to build and serve S3 on these machines.
SEAWEEDFS_VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
# seaweedfs's own go.mod replaces this module; a dependent module must repeat the replace.
SEAWEEDFS_BIP39_REPLACE="github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0"
# The go directive of the throwaway module (seaweedfs at this version needs >= 1.26.6).
SEAWEEDFS_GO_DIRECTIVE="${SEAWEEDFS_GO_DIRECTIVE:-1.26.6}"

cache="${SLIPSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slipstream}/tools"
localbin="${LOCALBIN:-${root}/bin}"
GO="${GO:-go}"
dir="${cache}/weed-${SEAWEEDFS_VERSION}"
mod="${cache}/.build-weed-${SEAWEEDFS_VERSION}"

log() { echo "seaweedfs.sh: $*" >&2; }

mkdir -p "$cache" "$localbin"
if [[ ! -x "${dir}/weed" ]]; then
	(
		flock 9
		[[ -x "${dir}/weed" ]] && exit 0
		start=$SECONDS
		log "building weed ${SEAWEEDFS_VERSION} (first time on this machine; about 4 minutes)"
		mkdir -p "$mod" "$dir"
		cat >"${mod}/go.mod" <<-MOD
			module slipstream.local/weed-build

			go ${SEAWEEDFS_GO_DIRECTIVE}

			require github.com/seaweedfs/seaweedfs ${SEAWEEDFS_VERSION}

			replace ${SEAWEEDFS_BIP39_REPLACE}
		MOD
		# A blank import keeps the dependency in the module graph for `go build PKG`.
		cat >"${mod}/tools.go" <<-'TOOLS'
			//go:build tools

			// Package tools pins the seaweedfs module for the weed build.
			package tools

			import _ "github.com/seaweedfs/seaweedfs/weed"
		TOOLS
		# -mod=mod lets go fill go.sum for the throwaway module.
		(cd "$mod" && GOWORK=off GOFLAGS=-mod=mod "$GO" build -o "${dir}/weed.new" github.com/seaweedfs/seaweedfs/weed)
		mv -f "${dir}/weed.new" "${dir}/weed"
		log "weed built in $((SECONDS - start))s -> ${dir}/weed"
	) 9>"${cache}/.weed-${SEAWEEDFS_VERSION}.lock"
fi
ln -sfn "${dir}/weed" "${localbin}/weed"
echo "${localbin}/weed"
