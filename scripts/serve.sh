#!/usr/bin/env bash
# Sets up ./.venv and runs the server on its embedded defaults: SIP on 127.0.0.1:5060 (UDP),
# REST on http://127.0.0.1:8088/v1.0, SQLite and recordings in ./confbridge-data.
# Any `confbridge serve` option may follow, e.g. scripts/serve.sh --sip-port 5070.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/confbridge serve "$@"
