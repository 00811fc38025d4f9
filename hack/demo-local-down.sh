#!/usr/bin/env bash
# hack/demo-local-down.sh: stop what hack/demo-local.sh started (`make demo-local-down`) and remove its state.
# Each process is stopped by its recorded PID only (SIGTERM, then SIGKILL after 15 s), and
# only if that PID still runs the program the demo started. Idempotent.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${SLIPSTREAM_DEMO_DIR:-${root}/tmp/.demo-local}"

running() { # running PID: the process exists and is not a zombie
	kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

stop() { # stop NAME EXPECTED-COMMAND-SUBSTRING
	local f="${state}/$1.pid" pid
	[[ -f "$f" ]] || return 0
	pid="$(cat "$f")"
	if running "$pid" && tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q -- "$2"; then
		echo "stopping $1 (pid ${pid})"
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + 15))
		while running "$pid"; do
			if ((SECONDS >= deadline)); then
				echo "$1 (pid ${pid}) did not stop within 15s; killing it"
				kill -KILL "$pid" 2>/dev/null || true
				break
			fi
			sleep 0.1
		done
	fi
	rm -f "$f"
}

if [[ ! -d "${state}" ]]; then
	echo "no demo state in ${state}; nothing to stop"
	exit 0
fi
# Agent first (it drains and persists), then the writer, then NATS.
stop agent "run --nats-url"
stop writer "demo-writer"
stop nats-server "nats-server"
rm -rf "${state}"
echo "demo stopped and ${state} removed"
