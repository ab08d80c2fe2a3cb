#!/usr/bin/env bash
# `make demo`: the main job on the built-in lab host.
#   1. start a lab host (Debian 12 systemd container, docker-in-docker capable)
#   2. preflight it with `provision doctor`
#   3. `provision bootstrap` with every component that can work from here
#   4. print a short summary and how to go on
# Environment: DEMO_KIND=container|vm, DEMO_ARCH=amd64|arm64, DEMO_MODE=minikube|kubeadm,
#              DEMO_FULL=1 on a machine with internet access (adds the cluster layer and the
#              registry reachability checks of doctor).
set -euo pipefail
cd "$(dirname "$0")/.."
PROVISION=${PROVISION:-.venv/bin/provision}
KIND=${DEMO_KIND:-container}
ARCH=${DEMO_ARCH:-amd64}
MODE=${DEMO_MODE:-minikube}
FULL=${DEMO_FULL:-0}

step() { printf '\n==> %s\n' "$*"; }

step "Starting a lab host ($KIND, $ARCH, $MODE mode)"
if "$PROVISION" lab status >/dev/null 2>&1; then
    echo "a lab is already up: reusing it (provision lab down to start over)"
else
    "$PROVISION" lab up --kind "$KIND" --arch "$ARCH" --mode "$MODE"
fi

step "Preflight: provision -i lab doctor"
doctor_args=()
[ "$FULL" = 1 ] || doctor_args+=(--skip-network-checks)
"$PROVISION" -i lab doctor "${doctor_args[@]}" || echo "(doctor reported problems: see above)"

if [ "$FULL" = 1 ]; then
    components=""   # the mode's full default: host layer, then the cluster layer
    skipped="nothing"
else
    if [ "$MODE" = minikube ]; then components="base,docker"; else components="base,containerd"; fi
    skipped="the cluster layer ($MODE): it downloads Kubernetes packages, images and minikube \
from pkgs.k8s.io / registry.k8s.io, which only the distribution mirror is reachable here. \
Run 'make demo DEMO_FULL=1' on a machine with internet access."
fi

step "Bootstrap: provision -i lab bootstrap ${components:+--components $components}"
started=$(date +%s)
"$PROVISION" -i lab bootstrap ${components:+--components "$components"}
took=$(( $(date +%s) - started ))

step "Idempotence: the same command again must report changed=0"
"$PROVISION" --json -i lab bootstrap ${components:+--components "$components"} 2>/dev/null \
    | .venv/bin/python -c 'import json,sys; o=json.load(sys.stdin); print("changed per host:", {h: s["changed"] for h, s in o["hosts"].items()})'

step "Summary"
"$PROVISION" lab status
echo "bootstrap took ${took}s; components: ${components:-all for $MODE}"
echo "skipped: $skipped"
cat <<'TXT'

Try it:
  .venv/bin/provision lab ssh lab-1                       # a shell on the lab host
  .venv/bin/provision lab ssh lab-1 -- docker info        # docker as the non-root user, no sudo
  .venv/bin/provision -i lab doctor                       # preflight again
  .venv/bin/provision lab down                            # remove everything the lab created
TXT
