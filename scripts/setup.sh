#!/usr/bin/env bash
# Creates ./.venv (if missing) and installs confbridge into it, editable.
# Usage: scripts/setup.sh [dev]   -- "dev" adds the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
extras=""
if [ "${1:-}" = "dev" ]; then extras="[dev]"; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
