#!/usr/bin/env bash
# hack/cluster/smoke.sh: prove the running local cluster (hack/cluster-up.sh) runs slipstream
# the way the chart and the end-to-end suite will, then remove everything it created.
#
#   1. A nats-server (bin/nats-server, JetStream) on a free 127.0.0.1 port, with a bucket
#      `smoke` holding greeting=hello (bin/nats).
#   2. An agent DaemonSet: slipstream agent image, imagePullPolicy Never, hostNetwork, a
#      DirectoryOrCreate hostPath under the state directory, readOnlyRootFilesystem, all
#      capabilities dropped. It must turn Ready (its /readyz probe) and serve greeting=hello
#      on its read API at 127.0.0.1.
#   2b. A Pod on the CNI bridge network gets an address in the Pod CIDR and runs to completion.
#   3. A manager Pod as the chart will run it on this cluster: hostNetwork, runAsNonRoot,
#      readOnlyRootFilesystem, KUBERNETES_SERVICE_HOST/PORT=127.0.0.1/6443 and its
#      ServiceAccount token (bound to cluster-admin for the smoke test only), with the CRDs
#      from config/crd/bases. It must turn Ready and win its leader-election Lease (a write
#      to the API server with the token).
# Exit 0 only if every check passed. Needs root, bin/nats-server and bin/nats (make nats-server nats).
set -euo pipefail

# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MANAGER_IMAGE="${MANAGER_IMAGE:-slipstream/manager:dev}"
AGENT_IMAGE="${AGENT_IMAGE:-slipstream/agent:dev}"
NS=slipstream-smoke
SMOKE="${DIR}/smoke"

require_root
[[ -f "$ENV_FILE" ]] || die "no running cluster (${ENV_FILE} is missing): make cluster-up first"
kubectl get --raw=/readyz >/dev/null 2>&1 || die "the API server at https://${API_HOST}:${API_PORT} is not ready: make cluster-up first"
for b in nats-server nats; do
	[[ -x "${localbin}/${b}" ]] || die "${localbin}/${b} is missing: make nats-server nats"
done

# free_port: a TCP port on 127.0.0.1 nothing listens on (checked by connecting).
free_port() {
	local p
	for p in $(shuf -i 20000-29999 -n 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null || {
			echo "$p"
			return 0
		}
	done
	die "no free port found"
}

created_crds=()
nats_pid=""
cleanup() {
	local rc=$?
	log "smoke: cleaning up"
	kubectl delete namespace "$NS" --ignore-not-found --wait=true --timeout=90s >/dev/null 2>&1 || log "smoke: namespace ${NS} not deleted"
	kubectl delete clusterrolebinding slipstream-smoke-manager --ignore-not-found >/dev/null 2>&1 || true
	for c in "${created_crds[@]}"; do kubectl delete -f "$c" --ignore-not-found >/dev/null 2>&1 || true; done
	if [[ -n "$nats_pid" ]]; then
		kill -TERM "$nats_pid" 2>/dev/null || true
		wait "$nats_pid" 2>/dev/null || true
	fi
	rm -rf "$SMOKE"
	exit "$rc"
}
trap cleanup EXIT

# ---- 1. NATS ------------------------------------------------------------------------------------
mkdir -p "${SMOKE}/nats"
nats_port="$(free_port)"
"${localbin}/nats-server" -js -a 127.0.0.1 -p "$nats_port" -sd "${SMOKE}/nats" >"${SMOKE}/nats.log" 2>&1 &
nats_pid=$!
nats_url="nats://127.0.0.1:${nats_port}"
wait_for "nats-server on ${nats_url}" "" "${localbin}/nats" --server "$nats_url" account info
"${localbin}/nats" --server "$nats_url" kv add smoke >/dev/null
"${localbin}/nats" --server "$nats_url" kv put smoke greeting hello >/dev/null

# ---- 2. agent DaemonSet -------------------------------------------------------------------------
agent_port="$(free_port)"
kubectl create namespace "$NS" >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: smoke-agent, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: smoke-agent}}
  template:
    metadata: {labels: {app: smoke-agent}}
    spec:
      hostNetwork: true
      dnsPolicy: ClusterFirstWithHostNet
      automountServiceAccountToken: false
      containers:
      - name: agent
        image: ${AGENT_IMAGE}
        imagePullPolicy: Never
        args: [run, --nats-url=${nats_url}, --bucket=smoke, --data-dir=/data/fold, --listen=127.0.0.1:${agent_port}]
        readinessProbe:
          httpGet: {host: 127.0.0.1, path: /readyz, port: ${agent_port}}
          periodSeconds: 1
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - name: data
        hostPath: {path: ${SMOKE}/agent-data, type: DirectoryOrCreate}
EOF
t0=$SECONDS
kubectl -n "$NS" rollout status daemonset/smoke-agent --timeout=120s >/dev/null ||
	die "smoke: agent DaemonSet not Ready: $(kubectl -n "$NS" get pods -o wide 2>&1; kubectl -n "$NS" logs daemonset/smoke-agent --tail=20 2>&1)"
log "smoke: agent DaemonSet Ready in $((SECONDS - t0))s"
got="$(curl -fsS "http://127.0.0.1:${agent_port}/v1/keys/greeting")" || die "smoke: agent read API on 127.0.0.1:${agent_port} failed"
[[ "$got" == hello ]] || die "smoke: agent read greeting=${got}, want hello"
[[ -d "${SMOKE}/agent-data/fold" ]] || die "smoke: the fold is not on the host path ${SMOKE}/agent-data/fold"
kubectl -n "$NS" logs daemonset/smoke-agent --tail=1 >/dev/null || die "smoke: kubectl logs (API server -> kubelet) failed"
log "smoke: PASS agent (image ${AGENT_IMAGE}, hostNetwork, hostPath) serves greeting=hello from its fold"

# ---- 2b. a Pod on the CNI bridge network -------------------------------------------------------
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: smoke-podnet, namespace: ${NS}}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - {name: agent, image: ${AGENT_IMAGE}, imagePullPolicy: Never, args: [help]}
EOF
phase=""
for _ in $(seq 240); do
	phase="$(kubectl -n "$NS" get pod smoke-podnet -o 'jsonpath={.status.phase}')"
	[[ "$phase" == Succeeded || "$phase" == Failed ]] && break
	sleep 0.25
done
[[ "$phase" == Succeeded ]] || die "smoke: pod-network Pod is ${phase:-not started}: $(kubectl -n "$NS" describe pod smoke-podnet 2>&1 | tail -n 15)"
pod_ip="$(kubectl -n "$NS" get pod smoke-podnet -o 'jsonpath={.status.podIP}')"
[[ "$pod_ip" == "${POD_CIDR%.*}."* ]] || die "smoke: pod-network Pod got IP '${pod_ip}', want one in ${POD_CIDR}"
log "smoke: PASS pod network (bridge ${CNI_BRIDGE}): a Pod got ${pod_ip} and ran to completion"

# ---- 3. manager Pod against 127.0.0.1:6443 ------------------------------------------------------
for c in "${root}"/config/crd/bases/*.yaml; do
	crd="$(basename "$c" .yaml)"
	crd="${crd#*_}.${crd%%_*}"
	kubectl get crd "$crd" >/dev/null 2>&1 && continue
	kubectl apply -f "$c" >/dev/null
	created_crds+=("$c")
done
probe_port="$(free_port)"
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: smoke-manager, namespace: ${NS}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: slipstream-smoke-manager}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: smoke-manager, namespace: ${NS}}]
---
apiVersion: v1
kind: Pod
metadata: {name: smoke-manager, namespace: ${NS}}
spec:
  serviceAccountName: smoke-manager
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  securityContext: {runAsNonRoot: true, runAsUser: 65532}
  containers:
  - name: manager
    image: ${MANAGER_IMAGE}
    imagePullPolicy: Never
    args: [--leader-elect, --leader-election-namespace=${NS}, --metrics-bind-address=0,
           --health-probe-bind-address=127.0.0.1:${probe_port}, --agent-image=${AGENT_IMAGE}, --cleanup-image=${MANAGER_IMAGE}]
    env:
    - {name: KUBERNETES_SERVICE_HOST, value: "${API_HOST}"}
    - {name: KUBERNETES_SERVICE_PORT, value: "${API_PORT}"}
    readinessProbe:
      httpGet: {host: 127.0.0.1, path: /readyz, port: ${probe_port}}
      periodSeconds: 1
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
EOF
t0=$SECONDS
kubectl -n "$NS" wait pod/smoke-manager --for=condition=Ready --timeout=120s >/dev/null ||
	die "smoke: manager Pod not Ready: $(kubectl -n "$NS" get pod smoke-manager -o wide 2>&1; kubectl -n "$NS" logs smoke-manager --tail=20 2>&1)"
log "smoke: manager Pod Ready in $((SECONDS - t0))s"
holder=""
for _ in $(seq 120); do
	holder="$(kubectl -n "$NS" get leases -o 'jsonpath={.items[*].spec.holderIdentity}' 2>/dev/null)"
	[[ -n "$holder" ]] && break
	sleep 0.5
done
[[ -n "$holder" ]] || die "smoke: the manager holds no Lease in ${NS} after 60s: $(kubectl -n "$NS" logs smoke-manager --tail=20 2>&1)"
log "smoke: PASS manager (image ${MANAGER_IMAGE}, hostNetwork, ServiceAccount token -> ${API_HOST}:${API_PORT}) holds Lease (holder ${holder})"
