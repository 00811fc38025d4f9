#!/usr/bin/env bash
# hack/demo-local-down.sh: stop what hack/demo-local.sh started (`make demo-local-down`) and remove its state.
# Each process is stopped by its recorded PID only (SIGTERM, then SIGKILL after 15 s), and
# only if that PID still runs the program the demo started. Idempotent.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${SLIPSTREAM_DEMO_DIR:-${root}/tmp/.demo-local}"

# shellcheck source=hack/lib-demo.sh
source "${root}/hack/lib-demo.sh"

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
