#!/usr/bin/env bash
# hack/k8s-assets.sh [COMPONENT|GROUP...]: build etcd and the Kubernetes binaries from source
# (there is no download path on these machines: only the Go module proxy), cache them by
# version outside the clone and link them into ./bin/k8s. Used by the envtest controller tests
# (KUBEBUILDER_ASSETS=./bin/k8s: etcd + kube-apiserver) and the one-node test cluster
# (hack/cluster-up.sh: all of them).
#
# Groups:   envtest = etcd kube-apiserver
#           cluster = etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl
#                     (the default)
# Components: etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl
#
# Cache (versions: hack/versions.env):
#   ${XDG_CACHE_HOME:-$HOME/.cache}/slipstream/k8s/kubernetes-<KUBERNETES_VERSION>/<binary>
#   ${XDG_CACHE_HOME:-$HOME/.cache}/slipstream/k8s/etcd-<ETCD_VERSION>/etcd
#   .../k8s/.build-*/  the throwaway modules the binaries are built from (kept: a rebuild
#                      after a wiped bin/ or a new component reuses them)
# Cost on 2 cores: cold about 14 minutes for the cluster group (kube-apiserver alone about
# 5), etcd about 45 s; warm (binaries cached): instant. Idempotent; one flock per version.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/versions.env
source "${root}/hack/versions.env"
cache="${SLIPSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slipstream}/k8s"
localbin="${LOCALBIN:-${root}/bin}/k8s"
GO="${GO:-go}"

all_k8s=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

want=()
[[ $# -gt 0 ]] || set -- cluster
for a in "$@"; do
	case "$a" in
	envtest) want+=(etcd kube-apiserver) ;;
	cluster) want+=(etcd "${all_k8s[@]}") ;;
	etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kubectl) want+=("$a") ;;
	-h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "k8s-assets.sh: unknown component or group '${a}'" >&2; exit 2 ;;
	esac
done
# de-duplicate, keep order
mapfile -t want < <(printf '%s\n' "${want[@]}" | awk '!seen[$0]++')

mkdir -p "$cache" "$localbin"
goversion="$("$GO" env GOVERSION)"
goversion="${goversion#go}"

log() { echo "k8s-assets: $*" >&2; }

# build_etcd: a module whose main is three lines calling etcdmain.Main.
build_etcd() {
	local dir="${cache}/etcd-${ETCD_VERSION}" mod="${cache}/.build-etcd-${ETCD_VERSION}"
	[[ -x "${dir}/etcd" ]] && return 0
	(
		flock 9
		[[ -x "${dir}/etcd" ]] && exit 0
		local start=$SECONDS
		log "building etcd ${ETCD_VERSION} (about 45 s cold)"
		mkdir -p "$mod" "$dir"
		cat >"${mod}/go.mod" <<-MOD
			module slipstream.local/etcd-build

			go ${goversion}

			require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
		MOD
		cat >"${mod}/main.go" <<-'MAIN'
			// Command etcd is upstream etcd, built from its module for the tests of Slipstream.
			package main

			import (
				"os"

				"go.etcd.io/etcd/server/v3/etcdmain"
			)

			func main() { etcdmain.Main(os.Args) }
		MAIN
		(cd "$mod" && GOWORK=off GOFLAGS=-mod=mod "$GO" build -o "${dir}/etcd.new" .)
		mv -f "${dir}/etcd.new" "${dir}/etcd"
		log "etcd built in $((SECONDS - start))s -> ${dir}/etcd"
	) 9>"${cache}/.etcd-${ETCD_VERSION}.lock"
}

# build_k8s COMPONENT...: a throwaway module requiring k8s.io/kubernetes with every staging
# module of that release replaced by its published v0.X.Y version (k8s.io/kubernetes's own
# go.mod replaces them with ./staging/... paths, which do not exist outside its repository).
build_k8s() {
	local dir="${cache}/kubernetes-${KUBERNETES_VERSION}" mod="${cache}/.build-kubernetes-${KUBERNETES_VERSION}"
	local missing=() c
	for c in "$@"; do [[ -x "${dir}/${c}" ]] || missing+=("$c"); done
	[[ ${#missing[@]} -gt 0 ]] || return 0
	(
		flock 9
		missing=()
		for c in "$@"; do [[ -x "${dir}/${c}" ]] || missing+=("$c"); done
		[[ ${#missing[@]} -gt 0 ]] || exit 0
		local start=$SECONDS
		log "building Kubernetes ${KUBERNETES_VERSION}: ${missing[*]} (cold: minutes each on 2 cores)"
		mkdir -p "$mod" "$dir"
		if [[ ! -f "${mod}/go.mod" ]]; then
			local upstream staging
			upstream="$(cd "$mod" && GOWORK=off GOFLAGS="" "$GO" mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" |
				sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
			[[ -f "$upstream" ]] || { log "cannot find the go.mod of k8s.io/kubernetes@${KUBERNETES_VERSION}"; exit 1; }
			# Lines like "k8s.io/api => ./staging/src/k8s.io/api" in its replace block.
			staging="$(sed -n 's|^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io/[A-Za-z0-9._/-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*$|\2|p' "$upstream" | sort -u)"
			[[ -n "$staging" ]] || { log "no staging replaces found in ${upstream}"; exit 1; }
			{
				printf 'module slipstream.local/kubernetes-build\n\ngo %s\n\n' "$goversion"
				printf 'require k8s.io/kubernetes %s\n\nreplace (\n' "$KUBERNETES_VERSION"
				while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$KUBERNETES_STAGING_VERSION"; done <<<"$staging"
				printf ')\n'
			} >"${mod}/go.mod.new"
			mv "${mod}/go.mod.new" "${mod}/go.mod"
			log "$(wc -l <<<"$staging") staging modules replaced with ${KUBERNETES_STAGING_VERSION}"
		fi
		local minor="${KUBERNETES_VERSION#v}"
		minor="${minor#*.}"
		minor="${minor%%.*}"
		local major="${KUBERNETES_VERSION#v}"
		major="${major%%.*}"
		local ldflags="-X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION}"
		ldflags+=" -X k8s.io/component-base/version.gitMajor=${major}"
		ldflags+=" -X k8s.io/component-base/version.gitMinor=${minor}"
		ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
		local pkgs=() tmp
		for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${c}"); done
		tmp="$(mktemp -d "${dir}/.new.XXXXXX")"
		trap 'rm -rf "$tmp"' EXIT
		# -mod=mod lets go fill go.sum for the throwaway module.
		(cd "$mod" && GOWORK=off GOFLAGS=-mod=mod "$GO" build -ldflags "$ldflags" -o "${tmp}/" "${pkgs[@]}")
		for c in "${missing[@]}"; do
			[[ -x "${tmp}/${c}" ]] || { log "go build produced no ${c}"; exit 1; }
			mv -f "${tmp}/${c}" "${dir}/${c}"
		done
		log "Kubernetes ${missing[*]} built in $((SECONDS - start))s -> ${dir}"
	) 9>"${cache}/.kubernetes-${KUBERNETES_VERSION}.lock"
}

k8s=()
for c in "${want[@]}"; do
	if [[ "$c" == etcd ]]; then build_etcd; else k8s+=("$c"); fi
done
[[ ${#k8s[@]} -eq 0 ]] || build_k8s "${k8s[@]}"

for c in "${want[@]}"; do
	if [[ "$c" == etcd ]]; then src="${cache}/etcd-${ETCD_VERSION}/etcd"; else src="${cache}/kubernetes-${KUBERNETES_VERSION}/${c}"; fi
	ln -sfn "$src" "${localbin}/${c}"
done

# The version flags are what envtest and kubelet registration see: check they took.
if [[ " ${want[*]} " == *" kube-apiserver "* ]]; then
	got="$("${localbin}/kube-apiserver" --version)"
	[[ "$got" == "Kubernetes ${KUBERNETES_VERSION}" ]] || { log "kube-apiserver --version says '${got}', want Kubernetes ${KUBERNETES_VERSION}"; exit 1; }
fi
log "ready in ${localbin} (KUBEBUILDER_ASSETS=${localbin}): ${want[*]}"
echo "$localbin"
