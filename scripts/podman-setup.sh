#!/usr/bin/env bash
# Make podman able to build and run flower's image on a Debian machine with no
# Docker engine and no container registry (the test machines). Safe to run
# again: once everything is in place it only checks, in about a second.
#
# 1. Debian packages: podman, runc, debootstrap (and what rootless podman
#    and podman-compose need).
# 2. /etc/containers/containers.conf.d/flower.conf: runc instead of crun
#    (crun refuses a hybrid cgroup layout) and default ulimits low enough for
#    a VM that cannot raise nofile/nproc to podman's defaults.
# 3. The base image, docker.io/library/python:3.11-slim, when it is not in
#    podman's store and cannot be pulled: a stand-in made from a Debian
#    bookworm minbase root filesystem with Python 3.11 and pip (built once,
#    about a minute; podman's store is the cache).
# 4. Likewise docker.io/library/redis:7 for examples/docker-compose.yml: a
#    stand-in built on the Python one with Debian's redis-server.
#
# Then build the image (see docs/install.rst):
#   podman build --format docker --network=host \
#       -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro -t flower .
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

BASE_IMAGE="docker.io/library/python:3.11-slim"
REDIS_IMAGE="docker.io/library/redis:7"
CONF_DIR=/etc/containers/containers.conf.d
CONF_FILE="$CONF_DIR/flower.conf"

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

# Run a command with its output hidden, unless it fails.
quietly() {
    local log status=0
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || status=$?
    [ "$status" -eq 0 ] || cat "$log" >&2
    rm -f "$log"
    return "$status"
}

apt_install podman runc debootstrap uidmap slirp4netns fuse-overlayfs podman-compose

conf='# Written by flower'"'"'s scripts/podman-setup.sh.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"'
if [ "$(cat "$CONF_FILE" 2>/dev/null)" != "$conf" ]; then
    $sudo mkdir -p "$CONF_DIR"
    printf '%s\n' "$conf" | $sudo tee "$CONF_FILE" >/dev/null
    echo "podman-setup: wrote $CONF_FILE"
fi

# The Debian archive apt is configured with: the first source of a release
# suite (a suite without "-updates", "-security"...), one-line or deb822.
debian_mirror() {
    local file
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$file" ] || continue
        awk '$1 == "deb" {
                 i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                 if ($(i + 1) !~ /-/) { print $i; exit }
             }' "$file"
    done
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -r "$file" ] || continue
        awk 'function flush() {
                 if (uri != "" && release) print uri
                 uri = ""; release = 0
             }
             /^[ \t]*$/ { flush(); next }
             $1 == "URIs:" { uri = $2 }
             $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i !~ /-/) release = 1 }
             END { flush() }' "$file"
    done
}

make_base_image() {
    local mirror rootfs
    mirror="$(debian_mirror | head -n 1)"
    mirror="${mirror:-http://deb.debian.org/debian}"
    rootfs="$(mktemp -d /var/tmp/flower-python-rootfs.XXXXXX)"
    # shellcheck disable=SC2064  # expand now: the directory to remove
    trap "$sudo rm -rf '$rootfs'" EXIT
    echo "podman-setup: making $BASE_IMAGE from Debian bookworm ($mirror)"
    quietly $sudo debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
        bookworm "$rootfs" "$mirror"
    # The official image lets pip install into the system Python: no marker.
    $sudo rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    $sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    $sudo tar -C "$rootfs" -c . | podman import --quiet \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python3"]' \
        --message "stand-in for $BASE_IMAGE made by flower's scripts/podman-setup.sh" \
        - "$BASE_IMAGE" >/dev/null
    $sudo rm -rf "$rootfs"
    trap - EXIT
}

make_redis_image() {
    local context
    context="$(mktemp -d)"
    echo "podman-setup: making $REDIS_IMAGE from $BASE_IMAGE and Debian's redis-server"
    cat >"$context/Containerfile" <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server \\
    && rm -rf /var/lib/apt/lists/*
EXPOSE 6379
USER redis
WORKDIR /var/lib/redis
CMD ["redis-server", "--protected-mode", "no", "--save", ""]
EOF
    quietly podman build --network=host -t "$REDIS_IMAGE" "$context" || { rm -rf "$context"; return 1; }
    rm -rf "$context"
}

available() {
    podman image exists "$1" || timeout 120 podman pull --quiet "$1" >/dev/null 2>&1
}

available "$BASE_IMAGE" || make_base_image
available "$REDIS_IMAGE" || make_redis_image
