"""Shared pytest fixtures. Lab fixtures (real container/VM hosts) live in lab_fixtures.py;
see its docstring for lab_host, lab_cluster and lab_image. Add shared fixtures below."""

from __future__ import annotations

from lab_fixtures import lab_cluster, lab_host, lab_image  # noqa: F401 - pytest fixtures
from simulator.fixtures import (  # noqa: F401,E402 - fixtures
    k8s_sim,
    k8s_sim_repo,
    sim_lab_node,
    sim_local,
)
