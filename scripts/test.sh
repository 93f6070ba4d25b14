#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
# Extra arguments go to pytest (e.g. scripts/test.sh -k options).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
apt_install redis-server chromium
python_venv "[test]"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
