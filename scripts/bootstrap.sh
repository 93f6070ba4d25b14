#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: the Debian packages the
# project runs with, and a virtualenv with flower installed: for the tests, .venv
# (editable, with the test extras); for the demo, .venv-demo (flower's wheel and
# its runtime dependencies only, as users install it).
# Safe to run again: it installs only what is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FLOWER_VENV:-$ROOT/.venv}"

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "bootstrap: installing Debian packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

make_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" || { apt_install python3-venv; python3 -m venv "$VENV"; }
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
}

# The test venv: flower editable, with the given extras ("[test]").
python_venv() {
    make_venv
    "$VENV/bin/python" -m pip install -q -e "$ROOT$1"
}

# A user's venv: flower's wheel built from this checkout, no extras.
user_venv() {
    make_venv
    bash "$ROOT/scripts/install-flower.sh" "$VENV/bin/python" "$ROOT"
}
