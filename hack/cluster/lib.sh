# shellcheck shell=bash disable=SC2034 # settings used by the scripts that source this file
# hack/cluster/lib.sh: shared settings and helpers of hack/cluster-up.sh, hack/cluster-down.sh,
# hack/cluster/images.sh and hack/cluster/smoke.sh (sourced, not run). Facts behind the settings: shared
# LOCAL-CLUSTER.md.
#
# Environment (all optional):
#   SLIPSTREAM_CLUSTER_DIR  state directory, outside the clone (default /var/tmp/slipstream-cluster)
#   PAUSE_IMAGE             sandbox image containerd runs for every Pod (default slipstream/pause:dev)
#   SLIPSTREAM_CLUSTER_WAIT seconds to wait for each component to turn ready (default 120)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
localbin="${LOCALBIN:-${root}/bin}"
k8sbin="${localbin}/k8s"

DIR="${SLIPSTREAM_CLUSTER_DIR:-/var/tmp/slipstream-cluster}"
PAUSE_IMAGE="${PAUSE_IMAGE:-slipstream/pause:dev}"
WAIT="${SLIPSTREAM_CLUSTER_WAIT:-120}"

# Fixed addresses: everything on 127.0.0.1. etcd is off its default ports so it cannot clash
# with a developer's own etcd; the API server is where the tests and the manager expect it.
API_HOST=127.0.0.1
API_PORT=6443
ETCD_CLIENT_PORT=12379
ETCD_PEER_PORT=12380
SERVICE_CIDR=10.96.0.0/16
POD_CIDR=10.244.0.0/24
CNI_BRIDGE=slipstream0
CNI_BIN_DIR=/usr/lib/cni

# Where each thing lives in the state directory.
MARKER="${DIR}/.slipstream-cluster"
PKI="${DIR}/pki"
PIDS="${DIR}/pids"
LOGS="${DIR}/logs"
HOST="${DIR}/host"
CONTAINERD_DIR="${DIR}/containerd"
CONTAINERD_SOCK="${CONTAINERD_DIR}/containerd.sock"
KUBELET_DIR="${DIR}/kubelet"
CNI_CONF_DIR="${DIR}/cni/net.d"
KUBECONFIG_ADMIN="${DIR}/admin.kubeconfig"
ENV_FILE="${DIR}/cluster.env"

# Host settings kubelet and the CNI bridge plugin change; cluster-down puts them back.
SAVED_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
	kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward)
# Host directories containerd 1.6 and kubelet create outside the state directory no matter
# how they are configured; removed on teardown when cluster-up found them missing.
# (/var/lib/kubelet: the device-plugin socket; /var/log/containers: log symlinks.)
HOST_DIRS=(/run/containerd /var/lib/cni /var/lib/kubelet /var/log/containers)

log() { echo "cluster: $*" >&2; }
die() {
	echo "cluster: error: $*" >&2
	exit 1
}

# check_dir refuses a state directory that `rm -rf` on teardown could hurt.
check_dir() {
	[[ "$DIR" == /* ]] || die "SLIPSTREAM_CLUSTER_DIR must be an absolute path, got '${DIR}'"
	[[ "$DIR" != *"/../"* && "$DIR" != *"/.." && "$DIR" != *"/./"* ]] || die "SLIPSTREAM_CLUSTER_DIR must be a clean path, got '${DIR}'"
	local depth="${DIR//[^\/]/}"
	[[ ${#depth} -ge 2 ]] || die "SLIPSTREAM_CLUSTER_DIR '${DIR}' is too close to /: use a directory of its own such as /var/tmp/slipstream-cluster"
	case "$(realpath -m "$DIR")/" in
	"${root}/"*) die "SLIPSTREAM_CLUSTER_DIR '${DIR}' is inside the clone: it must live outside it (kubelet and containerd mount there)" ;;
	esac
	if [[ -e "$DIR" && ! -e "$MARKER" ]] && [[ -n "$(ls -A "$DIR" 2>/dev/null)" ]]; then
		die "${DIR} exists, is not empty and was not made by cluster-up (no ${MARKER}): refusing to use it"
	fi
}

require_root() {
	[[ $(id -u) -eq 0 ]] || die "the local cluster runs kubelet and containerd: run as root"
	[[ "$(uname -s)" == Linux ]] || die "the local cluster needs Linux"
}

kubectl() { "${k8sbin}/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
ctr() { command ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# ---- processes, by recorded PID -------------------------------------------------------------

# pid_of NAME: the recorded PID of NAME if that process still runs the recorded binary.
pid_of() {
	local f="${PIDS}/$1.pid" pid exe
	[[ -f "$f" ]] || return 1
	read -r pid exe <"$f" || return 1
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	[[ "$(readlink "/proc/${pid}/exe" 2>/dev/null)" == "$exe" ]] || return 1
	echo "$pid"
}

# start NAME BINARY ARGS...: run BINARY in its own session, log to logs/NAME.log, record its
# PID and resolved binary (so a recycled PID is never mistaken for it). No-op if it runs.
start() {
	local name="$1" bin="$2"
	shift 2
	if pid="$(pid_of "$name")"; then
		log "${name} already running (pid ${pid})"
		return 0
	fi
	[[ -x "$bin" ]] || die "${name}: ${bin} is missing"
	local exe
	exe="$(readlink -f "$bin")"
	mkdir -p "$PIDS" "$LOGS"
	echo "--- $(date -u +%FT%TZ) start ${bin} $*" >>"${LOGS}/${name}.log"
	setsid "$exe" "$@" >>"${LOGS}/${name}.log" 2>&1 </dev/null 8>&- &
	local pid=$! i
	echo "${pid} ${exe}" >"${PIDS}/${name}.pid"
	# Until the forked shell has exec'd setsid and setsid has exec'd the binary,
	# /proc/PID/exe names bash or setsid and pid_of would call the process gone: wait for
	# the exec (milliseconds) so that callers never see that window.
	for ((i = 0; i < 200; i++)); do
		[[ "$(readlink "/proc/${pid}/exe" 2>/dev/null)" == "$exe" || ! -d "/proc/${pid}" ]] && break
		sleep 0.05
	done
	log "${name} started (pid ${pid}, log ${LOGS}/${name}.log)"
}

# stop NAME [GRACE]: SIGTERM the recorded process, SIGKILL it after GRACE seconds (default 30).
stop() {
	local name="$1" grace="${2:-30}" pid i
	if ! pid="$(pid_of "$name")"; then
		rm -f "${PIDS}/${name}.pid"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		[[ -d "/proc/${pid}" ]] || break
		sleep 0.1
	done
	if [[ -d "/proc/${pid}" ]]; then
		log "${name} (pid ${pid}) ignored SIGTERM for ${grace}s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			[[ -d "/proc/${pid}" ]] || break
			sleep 0.1
		done
	fi
	rm -f "${PIDS}/${name}.pid"
	log "${name} stopped (pid ${pid})"
}

# wait_for WHAT NAME CMD...: poll CMD until it succeeds, for at most $WAIT seconds. Fails with
# the tail of NAME's log if NAME dies or time runs out.
wait_for() {
	local what="$1" name="$2" start=$SECONDS
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		if [[ -n "$name" ]] && ! pid_of "$name" >/dev/null; then
			tail -n 30 "${LOGS}/${name}.log" >&2 || true
			die "${name} exited while waiting for ${what} (log: ${LOGS}/${name}.log)"
		fi
		if ((SECONDS - start >= WAIT)); then
			[[ -z "$name" ]] || tail -n 30 "${LOGS}/${name}.log" >&2 || true
			die "timed out after ${WAIT}s waiting for ${what}${name:+ (log: ${LOGS}/${name}.log)}"
		fi
		sleep 0.2
	done
	log "${what}: ready ($((SECONDS - start))s)"
}

# render TEMPLATE OUT: substitute the @NAME@ placeholders of a template under hack/cluster/.
render() {
	local tmp="${2}.new"
	sed -e "s|@DIR@|${DIR}|g" \
		-e "s|@CONTAINERD_DIR@|${CONTAINERD_DIR}|g" \
		-e "s|@CONTAINERD_SOCK@|${CONTAINERD_SOCK}|g" \
		-e "s|@PAUSE_IMAGE@|$(normalize_image "$PAUSE_IMAGE")|g" \
		-e "s|@CNI_BIN_DIR@|${CNI_BIN_DIR}|g" \
		-e "s|@CNI_CONF_DIR@|${CNI_CONF_DIR}|g" \
		-e "s|@CNI_BRIDGE@|${CNI_BRIDGE}|g" \
		-e "s|@POD_CIDR@|${POD_CIDR}|g" \
		-e "s|@PKI@|${PKI}|g" \
		-e "s|@API_HOST@|${API_HOST}|g" \
		-e "s|@KUBELET_DIR@|${KUBELET_DIR}|g" \
		"${root}/hack/cluster/$1" >"$tmp"
	if grep -q '@[A-Z_]*@' "$tmp"; then
		die "template $1 has an unknown placeholder: $(grep -o '@[A-Z_]*@' "$tmp" | head -n1)"
	fi
	mv -f "$tmp" "$2"
}

# normalize_image REF: the fully qualified name containerd stores an image under
# (slipstream/agent:dev -> docker.io/slipstream/agent:dev).
normalize_image() {
	local ref="$1" first="${1%%/*}"
	if [[ "$ref" != */* ]]; then
		ref="docker.io/library/${ref}"
	elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then
		ref="docker.io/${ref}"
	fi
	echo "$ref"
}

containerd_up() { [[ -S "$CONTAINERD_SOCK" ]] && ctr version >/dev/null 2>&1; }
