"""Application builder: `import_path: serving.app:build_app` with the versions in `args:`.

One deployment per version, named `model_<version>`, and the ingress, named `router`.
Changing `args` changes the application's code version, so Serve restarts every
replica; traffic weights therefore change through the router's `user_config` instead.
"""

from __future__ import annotations

from typing import Any, cast

from ray.serve import Application, Deployment

from serving.model import EmbeddingModel, GenerationModel
from serving.router import Router
from serving.spec import AppArgs, parse

ROUTER_DEPLOYMENT = "router"

_MODEL_DEPLOYMENTS = cast(
    dict[str, Deployment], {"embeddings": EmbeddingModel, "generation": GenerationModel}
)
_ROUTER = cast(Deployment, Router)


def build_app(args: dict[str, Any]) -> Application:
    """Build the Serve application described by `args` (see serving.spec.AppArgs)."""
    spec = parse(AppArgs, args, "args")
    model_class = _MODEL_DEPLOYMENTS[spec.task]
    models = {
        version.name: model_class.options(name=version.deployment_name).bind(
            version, spec.model_name
        )
        for version in spec.versions
    }
    router = _ROUTER.options(
        name=ROUTER_DEPLOYMENT, user_config={"weights": spec.initial_weights()}
    )
    return router.bind(spec, models)
