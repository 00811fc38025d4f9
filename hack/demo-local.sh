#!/usr/bin/env bash
# hack/demo-local.sh: the standalone Slipstream demo without Kubernetes (`make demo-local`).
#
# Starts, on this machine only (127.0.0.1):
#   1. a real nats-server process with JetStream (bin/nats-server, built by hack/tool.sh),
#   2. a bucket "edge-config" seeded with routes, TLS certificates and WASM filter configs,
#      and a background writer changing it a few times per second (hack/demo-writer),
#   3. an agent (bin/agent) folding the bucket into a pebble store and serving it,
# then prints the agent's status and a few reads. `make demo-local-down` stops it all.
#
# Idempotent: a running demo is reported, not started twice. Every process is recorded by
# PID in the state directory and stopped by that PID only.
#
# Env: SLIPSTREAM_DEMO_DIR (state; default <repo>/tmp/.demo-local), DEMO_NATS_PORT (14222),
#      DEMO_LISTEN (127.0.0.1:7070), DEMO_BUCKET (edge-config), DEMO_RATE (5 writes/s),
#      NATS_SERVER, AGENT (binaries; default bin/nats-server, bin/agent).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${SLIPSTREAM_DEMO_DIR:-${root}/tmp/.demo-local}"
port="${DEMO_NATS_PORT:-14222}"
listen="${DEMO_LISTEN:-127.0.0.1:7070}"
bucket="${DEMO_BUCKET:-edge-config}"
rate="${DEMO_RATE:-5}"
localbin="${LOCALBIN:-${root}/bin}"
nats_server="${NATS_SERVER:-${localbin}/nats-server}"
agent="${AGENT:-${localbin}/agent}"
api="http://${listen}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

# shellcheck source=hack/lib-demo.sh
source "${root}/hack/lib-demo.sh"

show() { # show TITLE CMD...
	printf '\n\033[1m$ %s\033[0m\n' "$1"
	shift
	"$@" || true
}

if alive agent && alive nats-server; then
	say "demo already running (state in ${state}); reads:"
	curl -fsS "${api}/v1/status" | jq . || true
	echo "stop it with: make demo-local-down"
	exit 0
fi
if ls "${state}"/*.pid >/dev/null 2>&1; then
	say "a previous demo is partly running; cleaning it up first"
	SLIPSTREAM_DEMO_DIR="${state}" bash "${root}/hack/demo-local-down.sh"
fi
mkdir -p "${state}/bin"

[[ -x "${nats_server}" ]] || nats_server="$("${root}/hack/tool.sh" nats-server)"
if [[ ! -x "${agent}" ]]; then
	say "building bin/agent"
	mkdir -p "$(dirname "${agent}")"
	(cd "${root}" && go build -o "${agent}" ./cmd/agent)
fi
say "building the demo writer"
(cd "${root}" && go build -o "${state}/bin/demo-writer" ./hack/demo-writer)

say "starting nats-server on 127.0.0.1:${port} (JetStream in ${state}/nats)"
nohup "${nats_server}" -a 127.0.0.1 -p "${port}" -js -sd "${state}/nats" >"${state}/nats-server.log" 2>&1 &
echo $! >"${state}/nats-server.pid"
wait_for 20 "nats-server" bash -c "exec 3<>/dev/tcp/127.0.0.1/${port}"

say "creating bucket ${bucket} with routes, certificates and WASM filter configs"
"${state}/bin/demo-writer" --nats-url "nats://127.0.0.1:${port}" --bucket "${bucket}" --rate 0 2>>"${state}/writer.log"
say "starting the background writer (${rate} changes/s)"
nohup "${state}/bin/demo-writer" --nats-url "nats://127.0.0.1:${port}" --bucket "${bucket}" --rate "${rate}" >>"${state}/writer.log" 2>&1 &
echo $! >"${state}/writer.pid"

say "starting the agent: fold in ${state}/fold, read API on ${api}"
nohup "${agent}" run --nats-url "nats://127.0.0.1:${port}" --bucket "${bucket}" --backend pebble \
	--data-dir "${state}/fold" --listen "${listen}" >"${state}/agent.log" 2>&1 &
echo $! >"${state}/agent.pid"
wait_for 30 "the agent to be Live" curl -fsS "${api}/readyz"

show "curl ${api}/v1/status" bash -c "curl -fsS '${api}/v1/status' | jq ."
show "curl ${api}/v1/keys/route.api" bash -c "curl -fsS -D - '${api}/v1/keys/route.api' | tr -d '\r' | grep -iE '^(x-slipstream|$)|^\{' ; echo"
show "curl '${api}/v1/keys?prefix=wasm.' | head -3   (values are base64; decoded here with jq)" \
	bash -c "curl -fsS '${api}/v1/keys?prefix=wasm.' 2>/dev/null | head -3 | jq -c '{key, revision, module: (.value | @base64d | fromjson | .module)}'"
show "curl -s ${api}/v1/keys/cert.api.example.com | openssl x509 -noout -subject -enddate" \
	bash -c "curl -fsS '${api}/v1/keys/cert.api.example.com' | (command -v openssl >/dev/null && openssl x509 -noout -subject -enddate || head -2)"
show "curl -N '${api}/v1/watch?prefix=route.'   (3 live updates)" bash -c "timeout 10 curl -fsSN '${api}/v1/watch?prefix=route.' 2>/dev/null | head -3 | jq -c '{op, key, revision}'"
show "curl -s ${api}/metrics | grep ^slipstream_ | head" bash -c "curl -fsS '${api}/metrics' | grep -E '^slipstream_(applied_cursor|keys|pending|lag|updates_applied)' "

cat <<MSG

The demo is running (state and logs in ${state}):
  nats-server  nats://127.0.0.1:${port}  pid $(cat "${state}/nats-server.pid")
  writer       ${rate} changes/s to ${bucket}  pid $(cat "${state}/writer.pid")
  agent        ${api}  pid $(cat "${state}/agent.pid")
Try: kill -9 the agent and start it again with the same command (see ${state}/agent.log): it
resumes from its cursor. Stop everything with: make demo-local-down
MSG
