#!/usr/bin/env bash
# hack/cluster/images.sh [--no-import]: build the slipstream images without a registry or a
# container engine, and import them into the local cluster's containerd.
#
#   1. go build (CGO_ENABLED=0) bin/manager, bin/agent, bin/pause (hack/pause), and
#      bin/imagepack (hack/imagepack) for this machine;
#   2. pack each binary into an image tarball under bin/images/ (one layer: the binary as the
#      entrypoint, /tmp, /etc/passwd, the host's CA bundle for manager and agent);
#   3. if the cluster's containerd is up (hack/cluster-up.sh), `ctr -n k8s.io images import`
#      each tarball, skipping an image whose id (config digest) is already there under that
#      name. --no-import stops after step 2.
#
# Images (override with the environment; the Helm chart's image.repository/tag and
# agent.image.repository/tag must match):
#   MANAGER_IMAGE=slipstream/manager:dev   entrypoint /manager (also the cleanup Job image)
#   AGENT_IMAGE=slipstream/agent:dev       entrypoint /agent
#   PAUSE_IMAGE=slipstream/pause:dev       entrypoint /pause (containerd's sandbox_image)
# containerd stores them as docker.io/<name>; Pods refer to them by the short name with
# imagePullPolicy IfNotPresent or Never (there is nothing to pull from).
set -euo pipefail

# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MANAGER_IMAGE="${MANAGER_IMAGE:-slipstream/manager:dev}"
AGENT_IMAGE="${AGENT_IMAGE:-slipstream/agent:dev}"
GO="${GO:-go}"
import=1
case "${1:-}" in
"") ;;
--no-import) import=0 ;;
*)
	echo "usage: $0 [--no-import]" >&2
	exit 2
	;;
esac

out="${localbin}/images"
mkdir -p "$out"
ca=()
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && ca=(-ca-bundle /etc/ssl/certs/ca-certificates.crt)

log "images: go build bin/manager bin/agent bin/pause (static) and bin/imagepack"
(
	cd "$root"
	CGO_ENABLED=0 "$GO" build -o "${localbin}/manager" ./cmd/manager
	CGO_ENABLED=0 "$GO" build -o "${localbin}/agent" ./cmd/agent
	CGO_ENABLED=0 "$GO" build -o "${localbin}/pause" ./hack/pause
	"$GO" build -o "${localbin}/imagepack" ./hack/imagepack
)

# pack NAME REF [imagepack flags...]: write bin/images/NAME.tar; prints the image id.
pack() {
	local name="$1" ref="$2" line
	shift 2
	line="$("${localbin}/imagepack" -binary "${localbin}/${name}" -name "$ref" -out "${out}/${name}.tar" "$@")"
	echo "${line##* }"
}

# imported_id REF: the id (config digest) of the image containerd holds under REF, if any.
imported_id() {
	local digest
	digest="$(ctr images ls "name==$1" 2>/dev/null | awk 'NR > 1 { print $3 }')"
	[[ -n "$digest" ]] || return 0
	ctr content get "$digest" 2>/dev/null | grep -o '"config":{[^}]*}' | grep -o 'sha256:[0-9a-f]\{64\}' || true
}

refs=("$MANAGER_IMAGE" "$AGENT_IMAGE" "$PAUSE_IMAGE")
names=(manager agent pause)
ids=()
ids+=("$(pack manager "$MANAGER_IMAGE" -path /manager "${ca[@]}")")
ids+=("$(pack agent "$AGENT_IMAGE" -path /agent "${ca[@]}")")
ids+=("$(pack pause "$PAUSE_IMAGE" -path /pause)")
for i in "${!refs[@]}"; do
	log "images: ${refs[$i]} ${ids[$i]} -> ${out}/${names[$i]}.tar"
done

if [[ $import -eq 0 ]]; then
	exit 0
fi
if ! containerd_up; then
	log "images: the cluster's containerd (${CONTAINERD_SOCK}) is not running: packed only (make cluster-up imports them)"
	exit 0
fi
for i in "${!refs[@]}"; do
	full="$(normalize_image "${refs[$i]}")"
	if [[ "$(imported_id "$full")" == "${ids[$i]}" ]]; then
		log "images: ${full} already imported (${ids[$i]})"
		continue
	fi
	ctr images import "${out}/${names[$i]}.tar" >/dev/null
	got="$(imported_id "$full")"
	[[ "$got" == "${ids[$i]}" ]] || die "images: imported ${out}/${names[$i]}.tar but containerd has ${full} as '${got}', want ${ids[$i]}"
	log "images: imported ${full} (${ids[$i]})"
done
