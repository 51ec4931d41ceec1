"""Render the Serve config document that carries a plan (shared by every actuator).

Ray resets a deployment's replica count to the config's `num_replicas` whenever the
config is re-submitted, so the document always carries the desired counts; zero is
reached only through the scale API, and the document then says 1.

Every other option of a deployment is kept as the base document has it, the bounds of
its queue included (`max_ongoing_requests`, `max_queued_requests`, `backpressure_config`:
docs/reliability.md, "Load shedding"). A deployment the base does not list is written
with the data plane's bounds (`serving.spec`), never left to an unbounded default.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from controller.config import AppConfig, GovernorConfig
from controller.decisions import Plan
from controller.errors import ConfigError
from serving.spec import ModelUserConfig, router_queue_bounds, version_queue_bounds

NEW_VERSION_OPTIONS = version_queue_bounds(ModelUserConfig().max_batch_size)
"""Queue bounds of a version deployment the base does not list: its replicas batch at the
data plane's default `max_batch_size`, the user_config they start with."""
_QUEUE_OPTIONS = ("max_ongoing_requests", "max_queued_requests")


def load_serve_config(path: str | Path) -> dict[str, Any]:
    """Read a Serve config file (the `serve deploy` format) or raise ConfigError."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as err:
        raise ConfigError(f"{p}: cannot read the Serve config: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("applications"), list):
        raise ConfigError(f"{p}: a Serve config needs a top-level `applications:` list")
    return data


def check_serve_config_covers(serve_config: dict[str, Any], config: GovernorConfig) -> None:
    """Raise ConfigError unless every governed application is in the Serve config."""
    names = {a.get("name") for a in serve_config.get("applications", [])}
    missing = [a.name for a in config.applications if a.name not in names]
    if missing:
        raise ConfigError(
            f"applications {missing} are governed but not in the Serve config "
            f"(it has {sorted(n for n in names if n)})"
        )


def _governed_app(app: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A copy of `app` with its own deployments list, and those deployments by name."""
    app = dict(app)
    deployments = [dict(d) for d in app.get("deployments") or []]
    app["deployments"] = deployments
    by_name: dict[str, dict[str, Any]] = {}
    for d in deployments:
        if "name" in d:
            by_name.setdefault(d["name"], d)
    return app, by_name


def _entry(
    app: dict[str, Any],
    by_name: dict[str, dict[str, Any]],
    name: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The deployment `name` of `app`; one the base does not list is added with `options`."""
    entry = by_name.get(name)
    if entry is None:
        entry = by_name[name] = {"name": name, **copy.deepcopy(options)}
        app["deployments"].append(entry)
    return entry


def _router_options(app_cfg: AppConfig, by_name: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Queue bounds of a router the base does not list: what its versions hold."""
    versions = []
    for v in app_cfg.versions:
        entry = by_name.get(v.deployment) or {}
        versions.append(
            {**NEW_VERSION_OPTIONS, **{k: entry[k] for k in _QUEUE_OPTIONS if k in entry}}
        )
    return router_queue_bounds(versions)


def render_serve_config(base: dict[str, Any], plan: Plan, config: GovernorConfig) -> dict[str, Any]:
    """The Serve config `base` with the plan's replica counts and weights written in.

    One pass over the fleet. `base` is never changed; parts of it the plan does not touch
    are shared with the result rather than copied, so treat the result as read-only.
    """
    doc = dict(base)
    apps: list[Any] = list(base.get("applications") or [])
    doc["applications"] = apps
    position = {a["name"]: i for i, a in enumerate(apps) if isinstance(a, dict) and "name" in a}
    for app_cfg in config.applications:
        i = position.get(app_cfg.name)
        if i is None:
            continue
        app, by_name = _governed_app(apps[i])
        apps[i] = app
        app["external_scaler_enabled"] = True
        for v in app_cfg.versions:
            desired = plan.replicas_for(app_cfg.name, v.name)
            if desired is not None:
                entry = _entry(app, by_name, v.deployment, NEW_VERSION_OPTIONS)
                entry["num_replicas"] = max(1, desired)
        weights = plan.weights_for(app_cfg.name)
        if weights is not None:
            router = _entry(
                app, by_name, app_cfg.router_deployment, _router_options(app_cfg, by_name)
            )
            user_config = dict(router.get("user_config") or {})
            user_config["weights"] = {k: int(w) for k, w in sorted(weights.items())}
            router["user_config"] = user_config
    return doc


def deployed_weights(app_doc: dict[str, Any], router_deployment: str) -> dict[str, int] | None:
    """The router weights a Serve application document carries, if any."""
    for d in app_doc.get("deployments", []) or []:
        if d.get("name") == router_deployment:
            weights = (d.get("user_config") or {}).get("weights")
            if isinstance(weights, dict):
                return {str(k): int(v) for k, v in weights.items()}
    args_weights = (app_doc.get("args") or {}).get("weights")
    if isinstance(args_weights, dict):
        return {str(k): int(v) for k, v in args_weights.items()}
    return None
