#!/usr/bin/env bash
# hack/apt-ensure.sh CMD[:PACKAGE]...: make sure each command exists; install the Debian
# packages of the missing ones with apt-get (as root; otherwise say what to install and fail).
# PACKAGE defaults to CMD. Installs nothing when everything is there.
set -euo pipefail

missing=()
for spec in "$@"; do
	cmd="${spec%%:*}"
	pkg="${spec#*:}"
	command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[[ ${#missing[@]} -gt 0 ]] || exit 0

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
	echo "apt-ensure: missing ${missing[*]}: install them (Debian: apt-get install -y ${missing[*]})" >&2
	exit 1
fi
echo "apt-ensure: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
