#!/bin/sh
# Prepare this machine for the real tests (called by `make test` before pytest).
#
#   scripts/testenv.sh [start] install missing Debian packages, start dockerd when none runs,
#                              enable qemu-aarch64 binfmt (root); report what is missing (non-root)
#   scripts/testenv.sh stop    stop the dockerd this script started (and nothing else)
#
# PROVISION_TESTENV_RUN_FILE=F (set by `make test`): start also writes the pid of a dockerd it
# starts into F, and stop stops only that one. A dockerd that was already running when this run
# began (a developer's, or one an earlier `testenv.sh start` left) is left alone.
#
# Idempotent: a second run changes nothing. Tests that need something missing skip with a reason.
set -eu

STATE_DIR=${PROVISION_TESTENV_DIR:-/var/tmp/provision-testenv}
PIDFILE="$STATE_DIR/dockerd.pid"
PACKAGES="docker.io qemu-system-x86 qemu-utils qemu-user-static binfmt-support debootstrap
openssh-server openssh-client iptables iproute2 pebble lego etcd-client etcd-server cloud-image-utils
dpkg-dev gnupg gpgv openssl curl e2fsprogs util-linux"

say() { printf 'testenv: %s\n' "$*" >&2; }

missing_packages() {
    for p in $PACKAGES; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$status" in *" installed") ;; *) printf '%s ' "$p" ;; esac
    done
}

docker_works() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

stop() {
    if [ -n "${PROVISION_TESTENV_RUN_FILE:-}" ]; then
        if [ ! -s "$PROVISION_TESTENV_RUN_FILE" ]; then
            say "this run started no dockerd: nothing to stop"
            return 0
        fi
        if [ "$(cat "$PROVISION_TESTENV_RUN_FILE")" != "$(cat "$PIDFILE" 2>/dev/null)" ]; then
            say "the dockerd this run started is not the recorded one: left alone"
            return 0
        fi
    fi
    if [ -f "$PIDFILE" ]; then
        pid=$(cat "$PIDFILE")
        if kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null; then
            say "stopping the dockerd this script started (pid $pid)"
            kill "$pid"
            i=0
            while kill -0 "$pid" 2>/dev/null && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
        fi
        rm -f "$PIDFILE"
    else
        say "no dockerd was started by this script: nothing to stop"
    fi
}

case "${1:-start}" in
    start) ;;
    stop) stop; exit 0 ;;
    *) say "usage: $0 [start|stop]"; exit 2 ;;
esac

missing=$(missing_packages)
if [ "$(id -u)" -ne 0 ]; then
    [ -n "$missing" ] && say "not root: missing Debian packages (tests needing them skip): $missing"
    docker_works || say "not root: docker is not usable; container tests skip"
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || say "not root: qemu-aarch64 binfmt off; arm64 tests skip"
    exit 0
fi

if [ -n "$missing" ]; then
    say "installing: $missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! docker_works; then
    mkdir -p "$STATE_DIR"
    say "starting dockerd (log: $STATE_DIR/dockerd.log)"
    nohup dockerd >"$STATE_DIR/dockerd.log" 2>&1 &
    echo $! >"$PIDFILE"
    if [ -n "${PROVISION_TESTENV_RUN_FILE:-}" ]; then echo $! >"$PROVISION_TESTENV_RUN_FILE"; fi
    i=0
    until docker info >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 60 ]; then say "dockerd did not come up: see $STATE_DIR/dockerd.log"; exit 1; fi
        sleep 1
    done
fi

if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] \
    || ! grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    update-binfmts --enable qemu-aarch64
fi
# sudo (setuid) inside arm64 containers needs the "credentials" flag (C), which Debian's
# registration leaves off; register it again with flags POCF (what docker's binfmt tool uses).
REG=/proc/sys/fs/binfmt_misc/qemu-aarch64
if ! grep -q '^flags: .*C' "$REG"; then
    interp=$(sed -n 's/^interpreter //p' "$REG")
    magic=$(sed -n 's/^magic //p' /usr/share/binfmts/qemu-aarch64)
    mask=$(sed -n 's/^mask //p' /usr/share/binfmts/qemu-aarch64)
    echo -1 >"$REG"
    printf ':qemu-aarch64:M:0:%s:%s:%s:POCF\n' "$magic" "$mask" "$interp" \
        >/proc/sys/fs/binfmt_misc/register
    say "qemu-aarch64 binfmt registered with flags POCF (setuid works in arm64 containers)"
fi
say "ready: docker $(docker version -f '{{.Server.Version}}' 2>/dev/null), binfmt qemu-aarch64 $(head -1 /proc/sys/fs/binfmt_misc/qemu-aarch64)"
