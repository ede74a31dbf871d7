#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs SIPp (sip-tester) and sox when they
# are missing, sets up ./.venv with the test tools, then runs pytest (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v sox >/dev/null 2>&1 || missing+=(sox)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "scripts/test.sh: please install the Debian packages: ${missing[*]}" >&2
    exit 1
  fi
fi
scripts/setup.sh dev
exec .venv/bin/python -m pytest "$@"
