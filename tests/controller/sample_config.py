"""Small configs shared by the control-plane tests."""

from __future__ import annotations

from typing import Any

from controller.config import GovernorConfig, parse_config

SERVE_CONFIG: dict[str, Any] = {
    "http_options": {"host": "127.0.0.1", "port": 8000},
    "applications": [
        {
            "name": "embed",
            "route_prefix": "/",
            "import_path": "serving.app:build_app",
            "args": {"versions": [{"name": "v1"}, {"name": "v2"}]},
            "deployments": [
                {"name": "router", "user_config": {"weights": {"v1": 100, "v2": 0}}},
                {"name": "model_v1", "num_replicas": 1},
                {"name": "model_v2", "num_replicas": 1},
            ],
        }
    ],
}


def governor_config(**overrides: Any) -> GovernorConfig:
    """A one-application config over SERVE_CONFIG; keyword overrides go to the top level."""
    doc: dict[str, Any] = {
        "prices": {"cpu": 0.5},
        "applications": [
            {
                "name": "embed",
                "slo": {"latency_p95_ms": 200},
                "versions": [
                    {"name": "v1", "deployment": "model_v1", "min_replicas": 1, "max_replicas": 4},
                    {"name": "v2", "deployment": "model_v2", "min_replicas": 0, "max_replicas": 4},
                ],
            }
        ],
    }
    doc.update(overrides)
    return parse_config(doc)


def _version_app(version: str) -> dict[str, Any]:
    return {
        "name": f"embed-{version}",
        "route_prefix": None,
        "import_path": "serving.app:build_version",
        "runtime_env": {"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}},
        "args": {
            "task": "embeddings",
            "model_name": "minilm",
            "version": {"name": version, "model": "bundled:all-MiniLM-L6-v2", "device": "cpu"},
        },
        "deployments": [
            {
                "name": f"model_{version}",
                "num_replicas": 1,
                "max_ongoing_requests": 64,
                "user_config": {"max_batch_size": 32},
                "ray_actor_options": {"num_cpus": 0.5},
            }
        ],
    }


PER_VERSION_SERVE_CONFIG: dict[str, Any] = {
    "http_options": {"host": "127.0.0.1", "port": 8000},
    "applications": [
        {
            "name": "embed",
            "route_prefix": "/",
            "import_path": "serving.app:build_router",
            "args": {"task": "embeddings", "model_name": "minilm"},
            "deployments": [
                {
                    "name": "router",
                    "user_config": {
                        "weights": {"v1": 100, "v2": 0},
                        "versions": {"v1": "embed-v1", "v2": "embed-v2"},
                    },
                }
            ],
        },
        _version_app("v1"),
        _version_app("v2"),
    ],
}
"""SERVE_CONFIG's fleet in the per-version layout: a router application and one per version."""


def per_version_config(
    extra: list[dict[str, Any]] | None = None, **overrides: Any
) -> GovernorConfig:
    """governor_config() over PER_VERSION_SERVE_CONFIG, with `extra` versions appended."""
    doc: dict[str, Any] = {
        "prices": {"cpu": 0.5},
        "applications": [
            {
                "name": "embed",
                "slo": {"latency_p95_ms": 200},
                "versions": [
                    {"name": v, "deployment": f"model_{v}", "application": f"embed-{v}"}
                    for v in ("v1", "v2")
                ]
                + (extra or []),
            }
        ],
    }
    doc.update(overrides)
    return parse_config(doc)
