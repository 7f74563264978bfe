#!/usr/bin/env bash
# The test command of the README: set up .venv if needed (idempotent), run the default
# suite (slow tests excluded; `bash scripts/test.sh -m slow` runs those).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup_env.sh"
cd "$root"
exec "${LDF_VENV:-$root/.venv}/bin/python" -m pytest "$@"
