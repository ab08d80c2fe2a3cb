"""Run a simulated program from the source tree:
`PYTHONPATH=tests python -m simulator.run kubeadm 1.31.2 ...`.

The .deb packages install the same modules with a wrapper that fixes the version.
"""

from __future__ import annotations

import sys


def main() -> int:
    prog, version, *argv = sys.argv[1:]
    if prog == "kubeadm":
        from .cli_kubeadm import main as run
    elif prog == "kubelet":
        from .cli_kubelet import main as run
    elif prog == "kubectl":
        from .cli_kubectl import main as run
    else:
        raise SystemExit(f"unknown program {prog}")
    return run(argv, version)


if __name__ == "__main__":
    sys.exit(main())
