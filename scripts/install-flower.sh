#!/usr/bin/env bash
# Install flower the way a user gets it: build a wheel from a source tree (or
# take a built wheel or sdist) and install it with its runtime dependencies
# only, no test extras. The container image and the clean-install test both
# run this script, so what the tests prove is what the image does.
#
#   scripts/install-flower.sh PYTHON [SOURCE] [EXTRA_PACKAGE ...]
#
# PYTHON   the interpreter of the environment to install into
# SOURCE   a source tree, a .whl or a .tar.gz sdist (default: this checkout)
# EXTRA_PACKAGE  more pip requirements installed beside flower
#                (other broker clients, for example)
#
# FLOWER_EXTRAS in the environment names extras of flower to install with it
# (comma-separated, e.g. FLOWER_EXTRAS=postgresql).
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 PYTHON [SOURCE] [EXTRA_PACKAGE ...]" >&2
    exit 2
fi
PYTHON="$1"
SOURCE="${2:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
shift $(( $# >= 2 ? 2 : 1 ))

PIP=("$PYTHON" -m pip --disable-pip-version-check --no-cache-dir)

if [ -d "$SOURCE" ]; then
    wheel_dir="$(mktemp -d)"
    trap 'rm -rf "$wheel_dir"' EXIT
    "${PIP[@]}" wheel --quiet --no-deps --wheel-dir "$wheel_dir" "$SOURCE"
    package=("$wheel_dir"/flower-*.whl)
else
    package=("$SOURCE")
fi

extras="${FLOWER_EXTRAS:+[$FLOWER_EXTRAS]}"
"${PIP[@]}" install --quiet "${package[0]}$extras" "$@"
# The same version may be installed already (a second run): put this build in its place.
"${PIP[@]}" install --quiet --force-reinstall --no-deps "${package[0]}"
