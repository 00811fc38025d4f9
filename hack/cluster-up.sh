#!/usr/bin/env bash
# hack/cluster-up.sh: start (or finish starting) the one-node local Kubernetes cluster:
# etcd, kube-apiserver (https://127.0.0.1:6443), kube-controller-manager, kube-scheduler,
# containerd (Debian's 1.6, own directories and socket) and kubelet, with the slipstream
# images imported. Returns once the node is Ready and the default ServiceAccount exists.
# Idempotent: components already running are kept; a second run only checks.
# Undo everything with hack/cluster-down.sh. Needs root (kubelet, containerd).
#
# The first run builds the Kubernetes binaries from source (hack/k8s-assets.sh, about
# 14 minutes on 2 cores) and installs containerd, runc and the CNI plugins with apt.
#
# Output: the state directory ($SLIPSTREAM_CLUSTER_DIR, default /var/tmp/slipstream-cluster)
# holds cluster.env, a sourceable file that tests read:
#   KUBECONFIG=<dir>/admin.kubeconfig          cluster-admin (client certificate)
#   SLIPSTREAM_CLUSTER_DIR=<dir>
#   SLIPSTREAM_CONTAINERD_SOCK=<dir>/containerd/containerd.sock   (ctr -n k8s.io ...)
#   SLIPSTREAM_CLUSTER_NODE=<node name>  SLIPSTREAM_CLUSTER_API=https://127.0.0.1:6443
#   SLIPSTREAM_CLUSTER_CA=<dir>/pki/ca.crt
# and ./bin/kubeconfig and ./bin/cluster.env link to them. The last line on stdout is
# `export KUBECONFIG=...`; progress goes to stderr. Exit 0 = Ready; non-zero = it says why.
#
# Environment: SLIPSTREAM_CLUSTER_DIR, PAUSE_IMAGE, SLIPSTREAM_CLUSTER_WAIT (see hack/cluster/lib.sh),
# SLIPSTREAM_CLUSTER_IMAGES=0 to skip building and importing the slipstream images.
set -euo pipefail

# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster/lib.sh"

require_root
check_dir
started=$SECONDS

# ---- prerequisites ---------------------------------------------------------------------------
log "[1/8] host packages (containerd, runc, CNI plugins, iptables, openssl, curl)"
"${root}/hack/apt-ensure.sh" containerd runc "${CNI_BIN_DIR}/bridge:containernetworking-plugins" \
	iptables openssl curl ip:iproute2 setsid:util-linux flock:util-linux
for p in bridge host-local portmap loopback; do
	[[ -x "${CNI_BIN_DIR}/${p}" ]] || die "CNI plugin ${CNI_BIN_DIR}/${p} is missing (Debian package containernetworking-plugins)"
done

log "[2/8] Kubernetes binaries (hack/k8s-assets.sh cluster; the first build takes about 14 minutes)"
"${root}/hack/k8s-assets.sh" cluster >/dev/null

mkdir -p "$DIR"
chmod 0700 "$DIR"
touch "$MARKER"
exec 8>"${DIR}/.lock"
flock 8

node="$(hostname | tr '[:upper:]' '[:lower:]')"
[[ "$node" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "hostname '${node}' is not a valid Kubernetes node name"

# ---- host state, saved once (before anything changes it) ------------------------------------
if [[ ! -f "${HOST}/saved" ]]; then
	mkdir -p "$HOST"
	for s in "${SAVED_SYSCTLS[@]}"; do
		v="$(sysctl -n "$s" 2>/dev/null)" || continue
		printf '%s=%s\n' "$s" "$v"
	done >"${HOST}/sysctl"
	for d in "${HOST_DIRS[@]}"; do [[ -e "$d" ]] && echo "$d"; done >"${HOST}/dirs"
	for ipt in iptables ip6tables; do
		command -v "$ipt" >/dev/null || continue
		for t in filter nat mangle raw; do
			"$ipt" -w -t "$t" -S 2>/dev/null | awk -v ipt="$ipt" -v t="$t" '$1 == "-N" { print ipt, t, $2 }'
		done
	done >"${HOST}/chains"
	# iptables-nft creates its nf_tables tables on first use; cluster-down drops the ones it left empty.
	if command -v nft >/dev/null; then nft list tables 2>/dev/null; fi >"${HOST}/nft-tables"
	for m in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do [[ -d "${m}kubepods" ]] && echo "${m}kubepods"; done >"${HOST}/cgroups"
	if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then echo "$CNI_BRIDGE"; fi >"${HOST}/links"
	touch "${HOST}/saved"
	log "host state saved in ${HOST} (cluster-down restores it)"
fi

# ---- PKI and kubeconfigs ----------------------------------------------------------------------
# cert NAME CN O EXT: a certificate signed by the cluster CA.
cert() {
	local name="$1" cn="$2" o="$3" ext="$4" subj="/CN=$2"
	[[ -f "${PKI}/${name}.crt" ]] && return 0
	[[ -z "$o" ]] || subj="/O=${o}/CN=${cn}"
	openssl req -new -nodes -newkey rsa:2048 -keyout "${PKI}/${name}.key" -out "${PKI}/${name}.csr" -subj "$subj" 2>/dev/null
	printf '%s\n' "$ext" >"${PKI}/${name}.ext"
	openssl x509 -req -in "${PKI}/${name}.csr" -CA "${PKI}/ca.crt" -CAkey "${PKI}/ca.key" -CAcreateserial \
		-days 3650 -sha256 -extfile "${PKI}/${name}.ext" -out "${PKI}/${name}.crt.new" 2>/dev/null
	mv "${PKI}/${name}.crt.new" "${PKI}/${name}.crt"
	rm -f "${PKI}/${name}.csr" "${PKI}/${name}.ext"
}

# kubeconfig NAME CERT: a kubeconfig for https://127.0.0.1:6443 with the certificate embedded.
kubeconfig() {
	local out="${DIR}/$1.kubeconfig" c="$2"
	[[ -f "$out" ]] && return 0
	cat >"${out}.new" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: slipstream-local
		  cluster:
		    server: https://${API_HOST}:${API_PORT}
		    certificate-authority-data: $(base64 -w0 "${PKI}/ca.crt")
		users:
		- name: $1
		  user:
		    client-certificate-data: $(base64 -w0 "${PKI}/${c}.crt")
		    client-key-data: $(base64 -w0 "${PKI}/${c}.key")
		contexts:
		- name: slipstream-local
		  context:
		    cluster: slipstream-local
		    user: $1
		current-context: slipstream-local
	EOF
	chmod 0600 "${out}.new"
	mv "${out}.new" "$out"
}

log "[3/8] certificates and kubeconfigs in ${PKI}"
mkdir -p "$PKI"
chmod 0700 "$PKI"
if [[ ! -f "${PKI}/ca.crt" ]]; then
	openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "${PKI}/ca.key" -out "${PKI}/ca.crt.new" \
		-days 3650 -subj "/CN=slipstream-local-ca" 2>/dev/null
	mv "${PKI}/ca.crt.new" "${PKI}/ca.crt"
fi
if [[ ! -f "${PKI}/sa.pub" ]]; then
	openssl genrsa -out "${PKI}/sa.key" 2048 2>/dev/null
	openssl rsa -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub.new" 2>/dev/null
	mv "${PKI}/sa.pub.new" "${PKI}/sa.pub"
fi
server_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
cert apiserver kube-apiserver "" "$server_ext"
cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "$client_ext"
cert admin slipstream-admin system:masters "$client_ext"
cert controller-manager system:kube-controller-manager "" "$client_ext"
cert scheduler system:kube-scheduler "" "$client_ext"
cert "kubelet-${node}" "system:node:${node}" system:nodes "$client_ext"
kubeconfig admin admin
kubeconfig controller-manager controller-manager
kubeconfig scheduler scheduler
kubeconfig kubelet "kubelet-${node}"

# ---- control plane ------------------------------------------------------------------------------
log "[4/8] etcd and kube-apiserver (https://${API_HOST}:${API_PORT})"
start etcd "${k8sbin}/etcd" --name=default --data-dir="${DIR}/etcd" \
	--listen-client-urls="http://127.0.0.1:${ETCD_CLIENT_PORT}" --advertise-client-urls="http://127.0.0.1:${ETCD_CLIENT_PORT}" \
	--listen-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
	--initial-cluster="default=http://127.0.0.1:${ETCD_PEER_PORT}" --log-level=warn
wait_for etcd etcd curl -fsS "http://127.0.0.1:${ETCD_CLIENT_PORT}/health"

if ! pid_of kube-apiserver >/dev/null && (exec 3<>"/dev/tcp/${API_HOST}/${API_PORT}") 2>/dev/null; then
	die "${API_HOST}:${API_PORT} is already in use by another process: stop it first"
fi
start kube-apiserver "${k8sbin}/kube-apiserver" \
	--etcd-servers="http://127.0.0.1:${ETCD_CLIENT_PORT}" \
	--bind-address="$API_HOST" --advertise-address="$API_HOST" --secure-port="$API_PORT" \
	--endpoint-reconciler-type=none \
	--cert-dir="${DIR}/apiserver" \
	--tls-cert-file="${PKI}/apiserver.crt" --tls-private-key-file="${PKI}/apiserver.key" \
	--client-ca-file="${PKI}/ca.crt" \
	--kubelet-client-certificate="${PKI}/apiserver-kubelet-client.crt" --kubelet-client-key="${PKI}/apiserver-kubelet-client.key" \
	--kubelet-preferred-address-types=Hostname,InternalIP \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--service-account-key-file="${PKI}/sa.pub" --service-account-signing-key-file="${PKI}/sa.key" \
	--service-cluster-ip-range="$SERVICE_CIDR" \
	--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
	--allow-privileged=true --profiling=false
wait_for kube-apiserver kube-apiserver kubectl get --raw=/readyz

log "[5/8] kube-controller-manager and kube-scheduler"
start kube-controller-manager "${k8sbin}/kube-controller-manager" \
	--kubeconfig="${DIR}/controller-manager.kubeconfig" \
	--authentication-kubeconfig="${DIR}/controller-manager.kubeconfig" --authorization-kubeconfig="${DIR}/controller-manager.kubeconfig" \
	--bind-address=127.0.0.1 --secure-port=10257 --cert-dir="${DIR}/controller-manager" \
	--root-ca-file="${PKI}/ca.crt" --service-account-private-key-file="${PKI}/sa.key" \
	--cluster-signing-cert-file="${PKI}/ca.crt" --cluster-signing-key-file="${PKI}/ca.key" \
	--use-service-account-credentials=true --leader-elect=false --profiling=false
start kube-scheduler "${k8sbin}/kube-scheduler" \
	--kubeconfig="${DIR}/scheduler.kubeconfig" \
	--authentication-kubeconfig="${DIR}/scheduler.kubeconfig" --authorization-kubeconfig="${DIR}/scheduler.kubeconfig" \
	--bind-address=127.0.0.1 --secure-port=10259 --cert-dir="${DIR}/scheduler" \
	--leader-elect=false --profiling=false
wait_for kube-controller-manager kube-controller-manager curl -fsSk https://127.0.0.1:10257/healthz
wait_for kube-scheduler kube-scheduler curl -fsSk https://127.0.0.1:10259/healthz

# ---- node ----------------------------------------------------------------------------------------
log "[6/8] containerd (${CONTAINERD_SOCK})"
mkdir -p "$CONTAINERD_DIR" "$CNI_CONF_DIR" "$KUBELET_DIR" "${DIR}/pod-logs"
render containerd.toml "${CONTAINERD_DIR}/config.toml"
render cni.conflist "${CNI_CONF_DIR}/10-slipstream.conflist"
render kubelet.yaml "${KUBELET_DIR}/config.yaml"
start containerd "$(command -v containerd)" --config "${CONTAINERD_DIR}/config.toml"
wait_for containerd containerd containerd_up

log "[7/8] images (hack/cluster/images.sh)"
if [[ "${SLIPSTREAM_CLUSTER_IMAGES:-1}" != 0 ]]; then
	"${root}/hack/cluster/images.sh"
else
	ctr images ls -q | grep -qxF "$(normalize_image "$PAUSE_IMAGE")" ||
		die "SLIPSTREAM_CLUSTER_IMAGES=0 but the sandbox image ${PAUSE_IMAGE} is not imported: run hack/cluster/images.sh"
fi

# The kubernetes Service without kube-proxy. Every Pod gets KUBERNETES_SERVICE_HOST=10.96.0.1
# (the Service's ClusterIP), which nothing here routes: in-cluster clients on the host network
# (the KVFold agents) would send their API traffic out of the machine's default route. These
# rules play kube-proxy's part for that one Service: connections made on this host to
# 10.96.0.1:443 go to the API server on 127.0.0.1:6443 (its certificate names 10.96.0.1), and
# Pods on the bridge network are refused the Service range instead of leaking to the outside.
# cluster-down removes the chains with the other KUBE-* chains cluster-up created.
svc_ip="${SERVICE_CIDR%%/*}"
svc_ip="${svc_ip%.*}.1"
ensure_rule() { # ensure_rule TABLE CHAIN RULE...: append RULE to CHAIN unless it is there
	local t="$1" c="$2"
	shift 2
	iptables -w -t "$t" -C "$c" "$@" 2>/dev/null || iptables -w -t "$t" -A "$c" "$@"
}
iptables -w -t nat -N KUBE-SLIPSTREAM-SERVICES 2>/dev/null || true
ensure_rule nat KUBE-SLIPSTREAM-SERVICES -d "${svc_ip}/32" -p tcp --dport 443 -j DNAT --to-destination "${API_HOST}:${API_PORT}"
iptables -w -t nat -C OUTPUT -j KUBE-SLIPSTREAM-SERVICES 2>/dev/null || iptables -w -t nat -I OUTPUT 1 -j KUBE-SLIPSTREAM-SERVICES
iptables -w -t filter -N KUBE-SLIPSTREAM-FORWARD 2>/dev/null || true
ensure_rule filter KUBE-SLIPSTREAM-FORWARD -d "$SERVICE_CIDR" -j REJECT
iptables -w -t filter -C FORWARD -j KUBE-SLIPSTREAM-FORWARD 2>/dev/null || iptables -w -t filter -I FORWARD 1 -j KUBE-SLIPSTREAM-FORWARD

# No --node-ip: kubelet refuses a loopback one and would then publish no address at all. It takes
# the address of the default-route interface as InternalIP (also the podIP of hostNetwork
# Pods, which is where probes without a host go); the API server reaches it by the Hostname
# address, which resolves to 127.0.0.1 where kubelet listens.
log "[8/8] kubelet (node ${node})"
start kubelet "${k8sbin}/kubelet" --config="${KUBELET_DIR}/config.yaml" \
	--kubeconfig="${DIR}/kubelet.kubeconfig" --root-dir="$KUBELET_DIR" --cert-dir="${KUBELET_DIR}/pki" \
	--hostname-override="$node"
node_ready() {
	# kubelet's own health first: after a kubelet restart the Node still shows the old Ready.
	curl -fsS http://127.0.0.1:10248/healthz >/dev/null &&
		[[ "$(kubectl get node "$node" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
wait_for "node ${node} Ready" kubelet node_ready
# Pods can be created as soon as the default ServiceAccount and the root CA ConfigMap exist.
wait_for "default ServiceAccount and kube-root-ca.crt" kube-controller-manager \
	kubectl -n default get serviceaccount/default configmap/kube-root-ca.crt

cat >"${ENV_FILE}.new" <<EOF
# Written by hack/cluster-up.sh; source it (set -a) or read it as KEY=value lines.
KUBECONFIG=${KUBECONFIG_ADMIN}
SLIPSTREAM_CLUSTER_DIR=${DIR}
SLIPSTREAM_CONTAINERD_SOCK=${CONTAINERD_SOCK}
SLIPSTREAM_CLUSTER_NODE=${node}
SLIPSTREAM_CLUSTER_API=https://${API_HOST}:${API_PORT}
SLIPSTREAM_CLUSTER_CA=${PKI}/ca.crt
EOF
mv -f "${ENV_FILE}.new" "$ENV_FILE"
mkdir -p "$localbin"
ln -sfn "$KUBECONFIG_ADMIN" "${localbin}/kubeconfig"
ln -sfn "$ENV_FILE" "${localbin}/cluster.env"
log "cluster up in $((SECONDS - started))s: node ${node} Ready; state in ${DIR} (env: ${ENV_FILE})"
echo "export KUBECONFIG=${KUBECONFIG_ADMIN}"
