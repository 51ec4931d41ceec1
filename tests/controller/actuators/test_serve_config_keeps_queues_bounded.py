"""The controller's rewrites of the Serve config keep every queue in front of a version bounded:
the bounds the base sets survive as written, and a deployment the base does not list is
written with the data plane's bounds, never left to an unbounded default."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from controller.actuators.serve_config import NEW_VERSION_OPTIONS, render_serve_config
from controller.config import load_config
from controller.decisions import Plan, ReplicaDecision, WeightDecision
from serving.spec import RETRY_AFTER_S, version_queue_bounds
from tests.controller.sample_config import SERVE_CONFIG, governor_config

ROOT = Path(__file__).resolve().parents[3]
QUEUE_KEYS = ("max_ongoing_requests", "max_queued_requests", "backpressure_config")


def _plan(v1: int, v2: int, weights: dict[str, int] | None = None) -> Plan:
    return Plan(
        replicas=(ReplicaDecision("embed", "v1", v1, ()), ReplicaDecision("embed", "v2", v2, ())),
        weights=(WeightDecision("embed", weights, ()),) if weights else (),
    )


def _deployments(doc: dict[str, Any], app: int = 0) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in doc["applications"][app]["deployments"]}


def test_the_bounds_of_the_shipped_local_config_survive_a_rewrite() -> None:
    base = yaml.safe_load((ROOT / "configs/serve.local.yaml").read_text())
    config = load_config(ROOT / "configs/governor.local.yaml")
    before = {name: {k: d.get(k) for k in QUEUE_KEYS} for name, d in _deployments(base).items()}
    plan = Plan(
        replicas=(
            ReplicaDecision("embeddings", "v1", 3, ()),
            ReplicaDecision("embeddings", "v2", 0, ()),
        ),
        weights=(WeightDecision("embeddings", {"v1": 90, "v2": 10}, ()),),
    )
    after = _deployments(render_serve_config(base, plan, config))
    assert {name: {k: d.get(k) for k in QUEUE_KEYS} for name, d in after.items()} == before
    assert all(v["max_queued_requests"] > 0 for v in before.values())


def test_a_version_the_base_does_not_list_is_written_with_a_bounded_queue() -> None:
    base = copy.deepcopy(SERVE_CONFIG)
    base["applications"][0]["deployments"] = [
        d for d in base["applications"][0]["deployments"] if d["name"] != "model_v2"
    ]
    added = _deployments(render_serve_config(base, _plan(1, 2), governor_config()))["model_v2"]
    assert added["num_replicas"] == 2
    assert {k: added[k] for k in QUEUE_KEYS} == NEW_VERSION_OPTIONS
    assert added["max_queued_requests"] > 0
    assert added["backpressure_config"] == {"retry_after_s": RETRY_AFTER_S}


def test_a_router_the_base_does_not_list_admits_what_its_versions_hold() -> None:
    base = copy.deepcopy(SERVE_CONFIG)
    deployments = base["applications"][0]["deployments"]
    base["applications"][0]["deployments"] = [d for d in deployments if d["name"] != "router"]
    for d in base["applications"][0]["deployments"]:
        d.update(version_queue_bounds(32))
    doc = render_serve_config(base, _plan(1, 1, {"v1": 100, "v2": 0}), governor_config())
    router = _deployments(doc)["router"]
    assert router["user_config"] == {"weights": {"v1": 100, "v2": 0}}
    assert router["max_ongoing_requests"] == 2 * (64 + 32)
    assert router["max_queued_requests"] == 2 * (64 + 32)
    assert router["backpressure_config"] == {"retry_after_s": RETRY_AFTER_S}


def test_a_base_without_bounds_is_not_rewritten_by_the_controller() -> None:
    # What the operator deployed is what the controller keeps: it re-submits a config for
    # what it changed, never to add options the base left out.
    doc = render_serve_config(SERVE_CONFIG, _plan(1, 1), governor_config())
    for name, d in _deployments(doc).items():
        assert not any(k in d for k in QUEUE_KEYS), name
