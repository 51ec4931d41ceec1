"""Rendering a plan into the Serve config document."""

from __future__ import annotations

import pytest

from controller.actuators.serve_config import (
    check_serve_config_covers,
    load_serve_config,
    render_serve_config,
)
from controller.decisions import Plan, ReplicaDecision, WeightDecision
from controller.errors import ConfigError
from tests.controller.sample_config import SERVE_CONFIG, governor_config


def test_render_writes_replicas_weights_and_enables_the_external_scaler() -> None:
    plan = Plan(
        replicas=(ReplicaDecision("embed", "v1", 3, ()), ReplicaDecision("embed", "v2", 0, ())),
        weights=(WeightDecision("embed", {"v1": 75, "v2": 25}, ()),),
    )
    doc = render_serve_config(SERVE_CONFIG, plan, governor_config())
    app = doc["applications"][0]
    by_name = {d["name"]: d for d in app["deployments"]}
    assert app["external_scaler_enabled"] is True
    assert by_name["model_v1"]["num_replicas"] == 3
    assert by_name["model_v2"]["num_replicas"] == 1
    assert by_name["router"]["user_config"]["weights"] == {"v1": 75, "v2": 25}
    assert SERVE_CONFIG["applications"][0]["deployments"][1]["num_replicas"] == 1


def test_a_governed_app_missing_from_the_serve_config_is_refused() -> None:
    other = {"applications": [{"name": "other", "import_path": "x:y"}]}
    with pytest.raises(ConfigError, match=r"\['embed'\] are governed but not in the Serve config"):
        check_serve_config_covers(other, governor_config())


def test_a_serve_config_without_applications_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "serve.yaml"
    p.write_text("http_options: {}\n")
    with pytest.raises(ConfigError, match="applications"):
        load_serve_config(p)
