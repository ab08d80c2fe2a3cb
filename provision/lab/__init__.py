"""`provision lab`: throwaway lab hosts (systemd containers, qemu VMs, arm64) for tests and users.

``manager`` orchestrates (state, ports, keys, SSH wait, inventory) and dispatches to a backend
module by kind: ``container`` (docker) or ``vm`` (qemu). ``backend`` defines the interface.
"""
