#!/usr/bin/env bash
# hack/demo.sh: the Slipstream demo on a local one-node Kubernetes cluster (`make demo`).
#
# On this machine only (everything listens on 127.0.0.1):
#   1. builds what is missing and starts the one-node cluster (make cluster-up; the first run
#      compiles Kubernetes from source, about 14 minutes on 2 cores), which also builds the
#      manager and agent images and imports them into its containerd (make images),
#   2. starts a nats-server with JetStream and SeaweedFS (an S3-compatible server, the export
#      target), each a process recorded by PID,
#   3. `helm install`s the operator (charts/slipstream),
#   4. fills the bucket edge-config with routing tables, TLS certificates and WASM filter
#      configs, and keeps a writer changing it (hack/demo-writer),
#   5. applies a KVFold folding the route./cert./wasm. prefixes on every node, exported to S3
#      every minute,
# then prints `kubectl get kvfolds`, the node status, an agent read, and where to look next.
# `make demo-down` removes all of it.
#
# Idempotent: a second run reuses what runs and re-applies the rest.
#
# Env: SLIPSTREAM_DEMO_DIR (state; default <repo>/tmp/.demo), DEMO_NATS_PORT (14222),
#      DEMO_S3_PORT (18333; SeaweedFS also takes the 9 ports after it), DEMO_AGENT_PORT (7070),
#      DEMO_RATE (writes/s, 5), SLIPSTREAM_CLUSTER_DIR (see hack/cluster/lib.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${SLIPSTREAM_DEMO_DIR:-${root}/tmp/.demo}"
localbin="${LOCALBIN:-${root}/bin}"
nats_port="${DEMO_NATS_PORT:-14222}"
s3_port="${DEMO_S3_PORT:-18333}"
agent_port="${DEMO_AGENT_PORT:-7070}"
rate="${DEMO_RATE:-5}"
cluster_dir="${SLIPSTREAM_CLUSTER_DIR:-/var/tmp/slipstream-cluster}"
kubeconfig="${cluster_dir}/admin.kubeconfig"
release=slipstream
release_ns=slipstream-system
ns=edge
bucket=edge-config
s3_bucket=folds
api="http://127.0.0.1:${agent_port}"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() {
	echo "demo: $*" >&2
	exit 1
}
# shellcheck source=hack/lib-demo.sh
source "${root}/hack/lib-demo.sh"
cmdline() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mkdir -p "${state}/bin"
cd "${root}"

# ---- 1. build what is missing, start the cluster ------------------------------------------
if [[ ! -x "${localbin}/k8s/kubelet" ]]; then
	say "first run: building Kubernetes v1.37 from source (about 14 minutes on 2 cores), etcd, containerd setup"
	echo "    progress follows; later runs take seconds"
fi
say "starting the one-node cluster and importing this tree's manager and agent images (make cluster-up)"
if ! { [[ -x "${localbin}/k8s/kubectl" ]] && "${localbin}/k8s/kubectl" --kubeconfig "${kubeconfig}" --request-timeout=5s get --raw /readyz >/dev/null 2>&1; }; then
	touch "${state}/cluster-started-by-demo"
fi
make --no-print-directory cluster-up
k() { "${localbin}/k8s/kubectl" --kubeconfig "${kubeconfig}" "$@"; }
say "building the tools: helm, nats-server, SeaweedFS (first run: about 7 minutes)"
helm_bin="$(hack/tool.sh helm)"
nats_server="$(hack/tool.sh nats-server)"
weed="$(hack/seaweedfs.sh)"
go build -o "${state}/bin/demo-writer" ./hack/demo-writer
go build -o "${state}/bin/agent" ./cmd/agent
h() { KUBECONFIG="${kubeconfig}" "${helm_bin}" "$@"; }

# ---- 2. NATS and S3 --------------------------------------------------------------------------
if alive nats-server; then
	say "nats-server already running (pid $(cat "${state}/nats-server.pid"))"
else
	say "starting nats-server on 127.0.0.1:${nats_port} (JetStream in ${state}/nats)"
	port_open "${nats_port}" && die "127.0.0.1:${nats_port} is taken by another process: set DEMO_NATS_PORT"
	nohup "${nats_server}" -a 127.0.0.1 -p "${nats_port}" -js -sd "${state}/nats" >"${state}/nats-server.log" 2>&1 &
	echo $! >"${state}/nats-server.pid"
	wait_for 20 "nats-server" port_open "${nats_port}"
fi
if [[ ! -f "${state}/s3.env" ]]; then
	printf 'AWS_ACCESS_KEY_ID=demo%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
		"$(head -c20 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"${state}/s3.env"
fi
# shellcheck disable=SC1091
source "${state}/s3.env"
if alive weed; then
	say "SeaweedFS already running (pid $(cat "${state}/weed.pid"))"
else
	say "starting SeaweedFS (S3 on 127.0.0.1:${s3_port}, bucket ${s3_bucket}; data in ${state}/s3)"
	port_open "${s3_port}" && die "127.0.0.1:${s3_port} is taken by another process: set DEMO_S3_PORT"
	mkdir -p "${state}/s3/data"
	jq -n --arg a "${AWS_ACCESS_KEY_ID}" --arg s "${AWS_SECRET_ACCESS_KEY}" \
		'{identities: [{name: "demo", credentials: [{accessKey: $a, secretKey: $s}], actions: ["Admin", "Read", "Write", "List", "Tagging"]}]}' \
		>"${state}/s3/s3.json"
	p=$((s3_port + 1))
	(cd "${state}/s3" || exit 1
	HOME="${state}/s3" nohup "${weed}" mini -dir="${state}/s3/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
		-master.port=$((p)) -master.port.grpc=$((p + 1)) -volume.port=$((p + 2)) -volume.port.grpc=$((p + 3)) \
		-filer.port=$((p + 4)) -filer.port.grpc=$((p + 5)) -s3.port="${s3_port}" -s3.port.grpc=$((p + 6)) \
		-webdav=false -webdav.port=$((p + 7)) -s3.port.iceberg=0 -s3.port.lance=0 -admin.ui=false -admin.port.legacy=0 \
		-master.telemetry=false -s3.config="${state}/s3/s3.json" -bucket="${s3_bucket}" >"${state}/weed.log" 2>&1 &
		echo $! >"${state}/weed.pid")
	# weed leaves unix sockets in /tmp named after its ports; demo-down removes them.
	printf '/tmp/seaweedfs-%s.sock\n' "master-grpc-$((p + 1))" "volume-grpc-$((p + 3))" "filer-grpc-$((p + 5))" \
		"s3-grpc-$((p + 6))" "filer-$((p + 4))" "s3-${s3_port}" >"${state}/weed.sockets"
	s3_up() { [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${s3_port}/${s3_bucket}")" != 000 ]]; }
	wait_for 120 "SeaweedFS S3 on 127.0.0.1:${s3_port}" s3_up
fi

# ---- 3. the operator -------------------------------------------------------------------------
say "installing the operator: helm upgrade --install ${release} charts/slipstream -n ${release_ns}"
h upgrade --install "${release}" charts/slipstream --namespace "${release_ns}" --create-namespace --wait --timeout 3m \
	--set image.repository=slipstream/manager --set image.tag=dev --set image.pullPolicy=Never \
	--set agent.image.repository=slipstream/agent --set agent.image.tag=dev \
	--set hostNetwork=true \
	--set extraEnv[0].name=KUBERNETES_SERVICE_HOST --set-string extraEnv[0].value=127.0.0.1 \
	--set extraEnv[1].name=KUBERNETES_SERVICE_PORT --set-string extraEnv[1].value=6443 \
	--set metrics.port=18080 --set healthProbe.port=18081 | sed -n '1,/^NOTES:/p'

# ---- 4. the data -----------------------------------------------------------------------------
say "filling bucket ${bucket}: HTTP routes, TLS certificates, WASM filter configs"
"${state}/bin/demo-writer" --nats-url "nats://127.0.0.1:${nats_port}" --bucket "${bucket}" --rate 0 2>>"${state}/writer.log"
if ! alive writer; then
	say "starting the writer (${rate} changes/s, as a control plane would)"
	nohup "${state}/bin/demo-writer" --nats-url "nats://127.0.0.1:${nats_port}" --bucket "${bucket}" --rate "${rate}" >>"${state}/writer.log" 2>&1 &
	echo $! >"${state}/writer.pid"
fi

# ---- 5. the KVFold ---------------------------------------------------------------------------
say "applying the KVFold ${ns}/edge-config (a fold of route./cert./wasm. on every node)"
k create namespace "${ns}" --dry-run=client -o yaml | k apply -f - >/dev/null
k -n "${ns}" create secret generic s3-creds --from-env-file="${state}/s3.env" --dry-run=client -o yaml | k apply -f - >/dev/null
# As config/samples/slipstream_v1alpha1_kvfold.yaml, adapted to this cluster: NATS and S3 on
# 127.0.0.1 (so the agent uses the host network), no NATS credentials, the fold under the
# demo's state directory, every node.
cat >"${state}/kvfold.yaml" <<EOF
apiVersion: slipstream.dev/v1alpha1
kind: KVFold
metadata:
  name: edge-config
  namespace: ${ns}
spec:
  nats:
    urls: ["nats://127.0.0.1:${nats_port}"]
  bucket: ${bucket}
  scope:
    prefixes: ["route.", "cert.", "wasm."]
  backend:
    type: pebble
    pebble: {sync: false, cacheSize: 64Mi}
  storage: {hostPath: ${state}/host}
  batch: {window: 10ms, maxUpdates: 100}
  export:
    url: "s3://${s3_bucket}/edge-config?endpoint=http://127.0.0.1:${s3_port}&use_path_style=true&region=us-east-1&disable_https=true"
    credentialsSecretRef: {name: s3-creds}
    schedule: "* * * * *"
    retain: 5
  agent:
    port: ${agent_port}
    hostNetwork: true
  dataRetention: Retain
EOF
sed 's/^/    /' "${state}/kvfold.yaml"
k apply -f "${state}/kvfold.yaml"
say "waiting for the agent to fold the bucket (kubectl wait --for=condition=Ready kvfold/edge-config)"
k -n "${ns}" wait --for=condition=Ready kvfold/edge-config --timeout=180s
k -n "${ns}" annotate kvfold edge-config --overwrite "slipstream.dev/export-now=$(date +%s)" >/dev/null
wait_for 60 "the first export and the node's status" bash -c \
	"'${localbin}/k8s/kubectl' --kubeconfig '${kubeconfig}' -n ${ns} get kvfold edge-config -o jsonpath='{.status.lastExport.time}' | grep -q ."

# ---- what it looks like ----------------------------------------------------------------------
cmdline kubectl get kvfolds -n "${ns}"
k get kvfolds -n "${ns}"
cmdline kubectl get kvfoldnodes -n "${ns}"
k get kvfoldnodes -n "${ns}"
cmdline kubectl get pods -n "${ns}" -o wide
k get pods -n "${ns}" -o wide
cmdline curl -si "${api}/v1/keys/route.api"
curl -fsS -D - "${api}/v1/keys/route.api" | tr -d '\r' | grep -iE '^(x-slipstream|$)|^\{' || true
echo
cmdline curl -s "${api}/v1/status" "| jq '{phase, cursor, streamLastSequence, keys, lagSeconds, lastExport}'"
curl -fsS "${api}/v1/status" | jq '{phase, cursor, streamLastSequence, keys, lagSeconds, lastExport}' || true

cat <<MSG

The demo is running (state and logs in ${state}):
  cluster      kubectl: ${localbin}/k8s/kubectl --kubeconfig ${kubeconfig}   (or: export KUBECONFIG=${kubeconfig})
  operator     helm release ${release} in namespace ${release_ns}
  nats-server  nats://127.0.0.1:${nats_port}   pid $(cat "${state}/nats-server.pid")
  S3           http://127.0.0.1:${s3_port} bucket ${s3_bucket}   pid $(cat "${state}/weed.pid")
  writer       ${rate} changes/s to ${bucket}   pid $(cat "${state}/writer.pid")
  agent        ${api} on the node (hostNetwork), fold in ${state}/host/${ns}/edge-config

Where to look next:
  kubectl get kvf -n ${ns} -w                    Ready, nodes, max lag, last export
  kubectl describe kvfold edge-config -n ${ns}   conditions and events (CursorExpired, SeededFromExport, ExportSucceeded)
  kubectl logs -n ${ns} -l app.kubernetes.io/component=agent -f
  curl -N '${api}/v1/watch?prefix=route.'         live updates;  curl ${api}/metrics | grep ^slipstream_
  kubectl delete pod -n ${ns} -l app.kubernetes.io/component=agent   the new agent resumes from its cursor
Remove everything with: make demo-down
MSG
