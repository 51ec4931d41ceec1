"""The local Ray head's start options put its listeners on loopback and keep token auth on."""

from __future__ import annotations

import pytest

from controller.demo.local_ray import (
    LOOPBACK,
    SINGLE_NODE_ENV,
    local_ray_env,
    local_ray_init_kwargs,
    serve_http_options,
    start_local_ray,
)
from controller.errors import PermanentError


def test_the_head_runs_in_single_node_mode_on_loopback() -> None:
    assert local_ray_env()[SINGLE_NODE_ENV] == "0"
    kwargs = local_ray_init_kwargs(num_cpus=2, dashboard_port=8265, metrics_port=8080)
    assert kwargs["dashboard_host"] == LOOPBACK
    assert kwargs["_node_ip_address"] == LOOPBACK
    assert serve_http_options(8000) == {"host": LOOPBACK, "port": 8000}


@pytest.mark.parametrize("mode", ["disabled", "DISABLED", "k8s"])
def test_a_head_without_token_auth_is_refused_before_ray_starts(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", mode)
    with pytest.raises(PermanentError, match="token authentication"):
        start_local_ray(num_cpus=1)
