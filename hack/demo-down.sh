#!/usr/bin/env bash
# hack/demo-down.sh: remove everything hack/demo.sh started (`make demo-down`): the KVFold and
# its namespace, the Helm release, the writer, nats-server and SeaweedFS (each stopped by its
# recorded PID, and only if that PID still runs the program the demo started), the demo's
# state directory (the fold's host data is in it), and the cluster if the demo brought it up
# (make cluster-down; set DEMO_KEEP_CLUSTER=1 to keep it). Idempotent.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${SLIPSTREAM_DEMO_DIR:-${root}/tmp/.demo}"
localbin="${LOCALBIN:-${root}/bin}"
cluster_dir="${SLIPSTREAM_CLUSTER_DIR:-/var/tmp/slipstream-cluster}"
kubeconfig="${cluster_dir}/admin.kubeconfig"

# shellcheck source=hack/lib-demo.sh
source "${root}/hack/lib-demo.sh"

k() { "${localbin}/k8s/kubectl" --kubeconfig "${kubeconfig}" --request-timeout=10s "$@"; }
cluster_up() { [[ -x "${localbin}/k8s/kubectl" ]] && k get --raw /readyz >/dev/null 2>&1; }

if cluster_up; then
	# The KVFold first, while the operator runs its finalizer; then the operator.
	if k get namespace edge >/dev/null 2>&1; then
		echo "deleting the KVFold edge/edge-config and namespace edge"
		k delete kvfold -n edge edge-config --ignore-not-found --timeout=120s || true
		k delete namespace edge --ignore-not-found --timeout=120s || true
	fi
	if [[ -x "${localbin}/helm" ]] && KUBECONFIG="${kubeconfig}" "${localbin}/helm" status slipstream -n slipstream-system >/dev/null 2>&1; then
		echo "helm uninstall slipstream"
		KUBECONFIG="${kubeconfig}" "${localbin}/helm" uninstall slipstream -n slipstream-system --wait --timeout 3m || true
	fi
	k delete namespace slipstream-system --ignore-not-found --timeout=120s >/dev/null 2>&1 || true
fi

if [[ -d "${state}" ]]; then
	stop writer "demo-writer"
	stop nats-server "nats-server"
	stop weed "weed mini"
	if [[ -f "${state}/weed.sockets" ]]; then
		while read -r sock; do rm -f "$sock"; done <"${state}/weed.sockets"
	fi
fi

if [[ -f "${state}/cluster-started-by-demo" && "${DEMO_KEEP_CLUSTER:-0}" != 1 ]]; then
	echo "the demo brought the cluster up: make cluster-down"
	make --no-print-directory -C "${root}" cluster-down
elif cluster_up; then
	echo "the cluster was up before the demo: leaving it (make cluster-down removes it)"
fi
rm -rf "${state}"
echo "demo removed (${state})"
