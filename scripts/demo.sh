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
PYTHON=${PYTHON:-.venv/bin/python}
KIND=${DEMO_KIND:-container}
ARCH=${DEMO_ARCH:-amd64}
MODE=${DEMO_MODE:-minikube}
FULL=${DEMO_FULL:-0}

step() { printf '\n==> %s\n' "$*"; }

# A lab that is already up is reused only when it is what the demo asks for: a setting the
# user gave (DEMO_MODE/KIND/ARCH) that differs stops the demo; a default adapts to the lab.
lab=$("$PROVISION" --json lab status 2>/dev/null || true)
read -r lab_mode lab_kind lab_arch <<EOF_LAB || true
$(printf '%s' "$lab" | "$PYTHON" -c 'import json,sys
try: o = json.load(sys.stdin)
except ValueError: o = {}
print(o.get("mode") or "-", o.get("kind") or "-", o.get("arch") or "-")' 2>/dev/null)
EOF_LAB
if [ -n "${lab_mode:-}" ] && [ "$lab_mode" != "-" ]; then
    for pair in "DEMO_MODE:$MODE:$lab_mode:${DEMO_MODE:-}" "DEMO_KIND:$KIND:$lab_kind:${DEMO_KIND:-}" \
                "DEMO_ARCH:$ARCH:$lab_arch:${DEMO_ARCH:-}"; do
        IFS=: read -r var want have given <<EOF_PAIR
$pair
EOF_PAIR
        if [ "$want" != "$have" ] && [ -n "$given" ]; then
            echo "error: a $lab_kind $lab_arch lab in $lab_mode mode is already up, but $var=$given" >&2
            echo "  remove it first: $PROVISION lab down   (or run make demo $var=$have)" >&2
            exit 2
        fi
    done
    MODE=$lab_mode KIND=$lab_kind ARCH=$lab_arch
    step "Reusing the lab that is up ($KIND, $ARCH, $MODE mode; provision lab down to start over)"
else
    step "Starting a lab host ($KIND, $ARCH, $MODE mode)"
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
# The verdict needs a successful run: an unreachable or failed second run (its changed is 0
# too) is reported as what it is, with its errors, and stops the demo.
again_rc=0
again=$("$PROVISION" --json -i lab bootstrap ${components:+--components "$components"} \
        2>/dev/null) || again_rc=$?
if ! printf '%s' "$again" | "$PYTHON" -c 'import json, sys
o = json.load(sys.stdin)
changed = {h: s["changed"] for h, s in o["hosts"].items()}
if not o["ok"]:
    print("idempotence NOT proven: the second run did not succeed (exit %s):" % o["exit_code"])
    for e in o["errors"]:
        print("  %s: %s: %s" % (e["host"], e["task"], e["message"]))
    print("  log: %s" % o["log"])
    sys.exit(1)
print("changed per host:", changed)
sys.exit(1 if any(changed.values()) else 0)'; then
    echo "idempotence check failed" >&2
    [ "$again_rc" -ne 0 ] || again_rc=1
    exit "$again_rc"
fi

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
