"""Application builders for `serve run` / `serve deploy` configs.

Two layouts:
- `serving.app:build_router` + one `serving.app:build_version` application per version:
  the router reaches each version through a cross-application handle named in its
  `user_config.versions`, so adding or retiring a version restarts no other one. The
  layout of the shipped configs, and the one releases need.
- `serving.app:build_app`: one application with the router and every version in `args`.
  Changing `args` changes the application's code version, so Serve restarts every
  replica of it, which makes it fit for fixed sets of versions only.
In both, a version's deployment is named `model_<version>` and the router `router`;
traffic weights change live through the router's `user_config`.
"""

from __future__ import annotations

from typing import Any, cast

from ray.serve import Application, Deployment

from serving.model import EmbeddingModel, GenerationModel
from serving.router import Router
from serving.spec import AppArgs, RouterArgs, VersionAppArgs, parse

ROUTER_DEPLOYMENT = "router"

_MODEL_DEPLOYMENTS = cast(
    dict[str, Deployment], {"embeddings": EmbeddingModel, "generation": GenerationModel}
)
_ROUTER = cast(Deployment, Router)


def build_app(args: dict[str, Any]) -> Application:
    """Build the one-application layout described by `args` (see serving.spec.AppArgs)."""
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


def build_router(args: dict[str, Any]) -> Application:
    """Build a router application; its versions come from `user_config.versions`."""
    spec = parse(RouterArgs, args, "args")
    # Without a user_config in the Serve config the first reconfigure fails, naming the
    # missing version table, instead of a router that starts and routes nowhere.
    return _ROUTER.options(name=ROUTER_DEPLOYMENT, user_config={"weights": {}}).bind(spec, {})


def build_version(args: dict[str, Any]) -> Application:
    """Build the application of one version (see serving.spec.VersionAppArgs)."""
    spec = parse(VersionAppArgs, args, "args")
    model_class = _MODEL_DEPLOYMENTS[spec.task]
    return model_class.options(name=spec.version.deployment_name).bind(
        spec.version, spec.model_name
    )
