"""What every doctor check returns, and what a host is meant to become (pure data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@dataclass(frozen=True)
class CheckResult:
    host: str
    check: str
    status: str  # PASS | WARN | FAIL
    message: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class HostSpec:
    """What a host is meant to become (from the inventory), independent of its facts."""

    name: str
    mode: str = "kubeadm"
    control_plane: bool = True
    ingress: bool = True
    #: ingress_controller: gateway (NGINX Gateway Fabric instead of ingress-nginx)
    gateway: bool = False
    #: the Gateway's node ports (gateway_api_service_mode: NodePort); empty: ports 80/443
    gateway_node_ports: tuple[int, ...] = ()
    pod_cidr: str = "10.244.0.0/16"
    cni_plugin: str = "flannel"
    urls: tuple[str, ...] = field(default_factory=tuple)
    #: (url, why) the inventory's components cannot do without: unreachable there is a FAIL.
    needs: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def role(self) -> str:
        return "control_plane" if self.control_plane else "worker"
