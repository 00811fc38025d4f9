#!/usr/bin/env bash
# hack/cluster-down.sh: stop the local cluster started by hack/cluster-up.sh and undo every
# host change it made, then remove its state directory. Idempotent: with nothing running and
# no state directory it says so and exits 0. Exit non-zero only when something could not be
# undone (it says what).
#
# Order matters:
#   1. controller-manager and scheduler stop (nothing recreates Pods), then every Pod is deleted
#      through the API and kubelet tears it down (CNI DEL, volume unmounts, cgroups).
#   2. kubelet stops; any container left (kubelet gone, API down) is killed through containerd;
#      containerd stops; leftover shims of THIS containerd (their -address is our socket) are
#      killed by PID.
#   3. kube-apiserver and etcd stop (all processes by the PIDs cluster-up recorded).
#   4. Mounts under the state directory are unmounted; the iptables chains (KUBE-*, CNI-*),
#      kubepods cgroups, the CNI bridge and the host directories that were not there before
#      cluster-up are removed; the saved sysctls are restored.
# Environment: SLIPSTREAM_CLUSTER_DIR (see hack/cluster/lib.sh).
set -euo pipefail

# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster/lib.sh"

require_root
check_dir
if [[ ! -e "$MARKER" ]]; then
	log "no cluster state in ${DIR}: nothing to tear down"
	rm -f "${localbin}/kubeconfig" "${localbin}/cluster.env"
	exit 0
fi
exec 8>"${DIR}/.lock"
flock 8
started=$SECONDS
problems=0
problem() {
	echo "cluster: teardown problem: $*" >&2
	problems=$((problems + 1))
}

# ---- 1. Pods, through the API -------------------------------------------------------------------
stop kube-controller-manager
stop kube-scheduler
if pid_of kube-apiserver >/dev/null && pid_of kubelet >/dev/null && kubectl get --raw=/readyz >/dev/null 2>&1; then
	n="$(kubectl get pods -A --no-headers 2>/dev/null | wc -l)"
	if ((n > 0)); then
		log "deleting ${n} pod(s) through the API (kubelet runs CNI DEL and unmounts their volumes)"
		kubectl delete pods -A --all --wait=false --grace-period=10 >/dev/null || problem "kubectl delete pods failed"
		t0=$SECONDS
		while (($(kubectl get pods -A --no-headers 2>/dev/null | wc -l) > 0)); do
			if ((SECONDS - t0 >= 60)); then
				log "warning: pods still present after 60s (their containers are killed below): $(kubectl get pods -A --no-headers 2>&1 | head -n 5 | tr '\n' ';')"
				break
			fi
			sleep 0.5
		done
		(($(kubectl get pods -A --no-headers 2>/dev/null | wc -l) > 0)) || log "pods gone from the API after $((SECONDS - t0))s"
	fi
else
	if pid_of kubelet >/dev/null; then
		log "warning: kube-apiserver is not serving: pods are not deleted through the API (their containers are killed below)"
	fi
fi

# ---- 2. node ------------------------------------------------------------------------------------
stop kubelet
if pid_of containerd >/dev/null && containerd_up; then
	for t in $(ctr tasks ls -q 2>/dev/null); do
		log "killing leftover container task ${t}"
		ctr tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
	done
	for _ in $(seq 50); do
		[[ -z "$(ctr tasks ls -q 2>/dev/null)" ]] && break
		sleep 0.1
	done
	for t in $(ctr tasks ls -q 2>/dev/null); do ctr tasks delete -f "$t" >/dev/null 2>&1 || true; done
	for c in $(ctr containers ls -q 2>/dev/null); do ctr containers delete "$c" >/dev/null 2>&1 || true; done
fi
stop containerd
# Shims outlive containerd by design; ours name our socket in their arguments.
for p in /proc/[0-9]*; do
	pid="${p#/proc/}"
	[[ "$(readlink "${p}/exe" 2>/dev/null)" == */containerd-shim* ]] || continue
	tr '\0' '\n' <"${p}/cmdline" 2>/dev/null | grep -qxF "$CONTAINERD_SOCK" || continue
	log "killing containerd shim pid ${pid}"
	kill -KILL "$pid" 2>/dev/null || true
done

# ---- 3. control plane ---------------------------------------------------------------------------
stop kube-apiserver
stop etcd

# ---- 4. host changes ----------------------------------------------------------------------------
# Unmount deepest first; repeat because unmounting one can reveal another stacked beneath it.
# (mountinfo escapes spaces as \040; the paths here have none.)
umount_under() {
	local prefix="$1" m i
	for i in 1 2 3 4 5; do
		mapfile -t mounts < <(awk -v p="${prefix}/" 'index($5, p) == 1 || $5 == substr(p, 1, length(p) - 1) { print $5 }' /proc/self/mountinfo | awk '{ print length($0), $0 }' | sort -rn | cut -d' ' -f2-)
		[[ ${#mounts[@]} -gt 0 ]] || return 0
		for m in "${mounts[@]}"; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done
	done
	awk -v p="${prefix}/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | grep -q . && problem "still mounted under ${prefix}: $(awk -v p="${prefix}/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | head -n 3 | tr '\n' ' ')"
	return 0
}
umount_under "$DIR"
if [[ -f "${HOST}/dirs" ]]; then
	for d in "${HOST_DIRS[@]}"; do
		grep -qxF "$d" "${HOST}/dirs" && continue
		[[ -e "$d" ]] || continue
		umount_under "$d"
		if rm -rf "$d"; then log "removed ${d} (cluster-up created it)"; else problem "cannot remove ${d}"; fi
	done
fi

# iptables: chains named KUBE-* or CNI-* that were not there before cluster-up. Rules that jump
# to them are deleted first (from any chain), then the chains are flushed, then deleted.
if [[ -f "${HOST}/chains" ]]; then
	for ipt in iptables ip6tables; do
		command -v "$ipt" >/dev/null || continue
		for t in filter nat mangle raw; do
			mapfile -t chains < <("$ipt" -w -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ { print $2 }')
			new=()
			for c in "${chains[@]}"; do
				grep -qxF "${ipt} ${t} ${c}" "${HOST}/chains" || new+=("$c")
			done
			[[ ${#new[@]} -gt 0 ]] || continue
			pattern="$(printf '%s|' "${new[@]}")"
			pattern="-j (${pattern%|})( |$)"
			while read -r rule; do
				# The rule is in iptables-save syntax (quoted comments): eval splits it as the shell would.
				eval "\"$ipt\" -w -t \"$t\" -D ${rule#-A }" || problem "cannot delete ${ipt} -t ${t} rule: ${rule}"
			done < <("$ipt" -w -t "$t" -S | grep -E -- "^-A .* ${pattern}")
			for c in "${new[@]}"; do "$ipt" -w -t "$t" -F "$c" || problem "cannot flush ${ipt} -t ${t} ${c}"; done
			for c in "${new[@]}"; do "$ipt" -w -t "$t" -X "$c" || problem "cannot delete ${ipt} -t ${t} chain ${c}"; done
			log "removed ${ipt} ${t} chains: ${new[*]}"
		done
	done
fi

# The nf_tables tables iptables-nft created for those chains, when nothing else is left in them.
if [[ -f "${HOST}/nft-tables" ]] && command -v nft >/dev/null; then
	for fam in ip ip6; do
		ipt=iptables
		[[ "$fam" == ip6 ]] && ipt=ip6tables
		for t in filter nat mangle raw; do
			grep -qxF "table ${fam} ${t}" "${HOST}/nft-tables" && continue
			nft list tables 2>/dev/null | grep -qxF "table ${fam} ${t}" || continue
			# Only built-in chains with an ACCEPT policy and no rule: what the table was born as.
			"$ipt" -w -t "$t" -S 2>/dev/null | grep -qvE '^-P [A-Z]+ ACCEPT$' && continue
			if nft delete table "$fam" "$t"; then log "removed empty nf_tables table ${fam} ${t}"; else problem "cannot delete nf_tables table ${fam} ${t}"; fi
		done
	done
fi

# cgroups: the kubepods trees kubelet made in every hierarchy (v1 controllers and v2), leaves first.
if [[ -f "${HOST}/cgroups" ]]; then
	for m in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		d="${m}kubepods"
		[[ -d "$d" ]] || continue
		grep -qxF "$d" "${HOST}/cgroups" && continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[[ -d "$d" ]] && problem "cannot remove cgroup ${d} (a process still in it?)"
	done
	[[ -d /sys/fs/cgroup/cpu/kubepods || -d /sys/fs/cgroup/memory/kubepods ]] || log "removed kubepods cgroups"
fi

# The CNI bridge (the veths went with the Pods' network namespaces).
if [[ -f "${HOST}/links" ]] && ! grep -qxF "$CNI_BRIDGE" "${HOST}/links" && ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
	if ip link delete "$CNI_BRIDGE"; then log "removed bridge ${CNI_BRIDGE}"; else problem "cannot delete bridge ${CNI_BRIDGE}"; fi
fi

# Sysctls as they were before cluster-up.
if [[ -f "${HOST}/sysctl" ]]; then
	while IFS='=' read -r k v; do
		[[ -n "$k" ]] || continue
		[[ "$(sysctl -n "$k" 2>/dev/null)" == "$v" ]] && continue
		if sysctl -qw "${k}=${v}"; then log "restored ${k}=${v}"; else problem "cannot restore ${k}=${v}"; fi
	done <"${HOST}/sysctl"
fi

# Symlinks kubelet left in /var/log/containers that point into our state directory.
if [[ -d /var/log/containers ]]; then
	find /var/log/containers -maxdepth 1 -type l -lname "${DIR}/*" -delete 2>/dev/null || true
fi

if ((problems > 0)); then
	die "${problems} teardown problem(s) above; state kept in ${DIR} so a second cluster-down can retry"
fi
rm -f "${localbin}/kubeconfig" "${localbin}/cluster.env"
rm -rf "$DIR"
log "cluster down in $((SECONDS - started))s: processes stopped, host changes undone, ${DIR} removed"
