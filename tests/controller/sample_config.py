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
