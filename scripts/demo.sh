#!/usr/bin/env bash
# Install everything, then run Flower on http://localhost:5555 against a live demo
# cluster (a private Redis, two workers, a stream of demo tasks). Ctrl-C stops it all.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
apt_install redis-server
# Run as a user gets it: flower's wheel in a venv of its own, without the test extras.
VENV="${FLOWER_DEMO_VENV:-$ROOT/.venv-demo}"
user_venv
exec "$VENV/bin/python" "$ROOT/examples/demo.py" "$@"
