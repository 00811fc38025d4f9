# shellcheck shell=bash disable=SC2154 # state is set by the sourcing script
# Sourced by hack/demo.sh, hack/demo-local.sh and their -down scripts, which set $state (the
# demo's state directory holding NAME.pid files) and die(). Processes are known by their
# recorded PID only, and stopped only if that PID still runs the program the demo started.

running() { # running PID: the process exists and is not a zombie
	kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

alive() { # alive NAME: the recorded process is running
	[[ -f "${state}/$1.pid" ]] && running "$(cat "${state}/$1.pid")"
}

wait_for() { # wait_for SECONDS DESCRIPTION CMD...: poll CMD until it succeeds
	local secs="$1" what="$2"
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out after ${secs}s waiting for ${what} (logs in ${state})"
		sleep 0.2
	done
}

stop() { # stop NAME EXPECTED-COMMAND-SUBSTRING: SIGTERM, then SIGKILL after 15 s
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
