#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
# Extra arguments go to pytest (e.g. scripts/test.sh -k options).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
apt_install redis-server chromium rabbitmq-server prometheus openssl postgresql
# The broker tests read queue statistics from RabbitMQ's management API (port 15672).
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo rabbitmq-plugins --quiet enable rabbitmq_management >/dev/null
# The container tests build and run the image with podman (tests/test_container.py).
bash "$ROOT/scripts/podman-setup.sh" \
    || echo "test.sh: WARNING: scripts/podman-setup.sh failed: the container tests will not run" >&2
python_venv "[test]"
cd "$ROOT"
# Flower 2.2.0, which the parity and history-import tests run beside ours (made here,
# before the tests run side by side).
"$VENV/bin/python" -m tests.support.flower22 >/dev/null
# The tests mostly wait on workers, brokers and browsers: run the test modules in
# $FLOWER_TEST_PROCESSES processes side by side (each module whole in one of them; see
# tests/support/parallel.py). A later -n overrides it: -n0 runs the suite serially.
exec "$VENV/bin/python" -m pytest -n "${FLOWER_TEST_PROCESSES:-4}" --dist loadfile \
    --no-loadscope-reorder "$@"
