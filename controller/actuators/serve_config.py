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
from typing import Any, cast

import yaml

from controller.config import GovernorConfig, VersionConfig
from controller.decisions import Plan
from controller.errors import ConfigError
from serving.spec import (
    ModelUserConfig,
    deployment_name,
    router_queue_bounds,
    version_queue_bounds,
)

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


def _router_options(version_entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Queue bounds of a router the base does not list: what its versions hold."""
    versions = [
        {**NEW_VERSION_OPTIONS, **{k: entry[k] for k in _QUEUE_OPTIONS if k in entry}}
        for entry in version_entries
    ]
    return router_queue_bounds(versions)


def router_table(app_doc: dict[str, Any], router_deployment: str) -> dict[str, str]:
    """The version -> Serve application table a router application's user_config carries."""
    for d in app_doc.get("deployments", []) or []:
        if d.get("name") == router_deployment:
            table = (d.get("user_config") or {}).get("versions")
            if isinstance(table, dict):
                return {str(k): str(v) for k, v in table.items()}
    return {}


def version_app(
    template: dict[str, Any], template_deployment: str, version: VersionConfig
) -> dict[str, Any]:
    """The Serve application of `version`, made from another version's application.

    Everything but the names and the model source is the template's: runtime
    environment, device and placement, batching and queue bounds.
    """
    assert version.application is not None
    app = copy.deepcopy(template)
    app["name"] = version.application
    app["route_prefix"] = None
    args = app.setdefault("args", {})
    spec = dict(args.get("version") or {})
    spec["name"] = version.name
    if version.model is not None:
        spec["model"] = version.model
    args["version"] = spec
    entries = [d for d in app.get("deployments") or [] if d.get("name") == template_deployment]
    app["deployments"] = [{**d, "name": version.deployment} for d in entries[:1]]
    return app


class _Doc:
    """The applications of a Serve config being rendered, found by name."""

    def __init__(self, apps: list[Any]) -> None:
        self.apps = apps
        self.position = {
            a["name"]: i for i, a in enumerate(apps) if isinstance(a, dict) and "name" in a
        }
        self.own: dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]] = {}

    def governed(self, name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]] | None:
        """A copy of application `name` this render may change, and its deployments by name."""
        if name in self.own:
            return self.own[name]
        i = self.position.get(name)
        if i is None:
            return None
        app, by_name = _governed_app(self.apps[i])
        app["external_scaler_enabled"] = True
        self.apps[i] = app
        self.own[name] = (app, by_name)
        return app, by_name

    def add(self, app: dict[str, Any]) -> None:
        """Append a new application."""
        self.position[app["name"]] = len(self.apps)
        self.apps.append(app)

    def remove(self, names: set[str]) -> None:
        """Drop the named applications (Serve deletes what a submitted config leaves out)."""
        self.apps[:] = [
            a for a in self.apps if not (isinstance(a, dict) and a.get("name") in names)
        ]
        self.position = {
            a["name"]: i for i, a in enumerate(self.apps) if isinstance(a, dict) and "name" in a
        }
        for name in names:
            self.own.pop(name, None)


def _template(doc: _Doc, table: dict[str, str]) -> tuple[dict[str, Any], str] | None:
    """A version application the base's router table names, and its version's deployment.

    Taken from the base document, so a release can be rendered even once every version
    the base lists has been retired.
    """
    for version, name in table.items():
        if name in doc.position:
            return doc.apps[doc.position[name]], deployment_name(version)
    return None


def render_serve_config(base: dict[str, Any], plan: Plan, config: GovernorConfig) -> dict[str, Any]:
    """The Serve config `base` with the plan's replica counts and weights written in.

    Per-version applications follow the config's versions: one the base lacks (a
    release) is made from another version's, one the base's router table names but the
    config no longer has (a retired version) is left out, and the router's table lists
    exactly the config's. One pass over the fleet. `base` is never changed; parts of it
    the plan does not touch are shared with the result rather than copied, so treat the
    result as read-only.
    """
    doc = dict(base)
    apps: list[Any] = list(base.get("applications") or [])
    doc["applications"] = apps
    found = _Doc(apps)
    for app_cfg in config.applications:
        router = found.governed(app_cfg.name)
        if router is None:
            continue
        router_app, router_by_name = router
        retired: set[str] = set()
        table: dict[str, str] = {}
        if app_cfg.per_version:
            table = {v.name: cast(str, v.application) for v in app_cfg.versions}
            old = router_table(router_app, app_cfg.router_deployment)
            retired = set(old.values()) - set(table.values())
            template = _template(found, old)
            for v in app_cfg.versions:
                if v.application not in found.position and template is not None:
                    found.add(version_app(*template, v))
            found.remove(retired)
        version_entries = []
        for v in app_cfg.versions:
            held = found.governed(app_cfg.serve_app(v.name))
            if held is None:
                continue
            entry = _entry(*held, v.deployment, NEW_VERSION_OPTIONS)
            version_entries.append(entry)
            desired = plan.replicas_for(app_cfg.name, v.name)
            if desired is not None:
                entry["num_replicas"] = max(1, desired)
        weights = plan.weights_for(app_cfg.name)
        if weights is not None or retired or app_cfg.per_version:
            router_entry = _entry(
                router_app,
                router_by_name,
                app_cfg.router_deployment,
                _router_options(version_entries),
            )
            user_config = dict(router_entry.get("user_config") or {})
            if weights is not None:
                user_config["weights"] = {k: int(w) for k, w in sorted(weights.items())}
            if app_cfg.per_version:
                user_config["versions"] = table
                # A retired version leaves the table with weight 0; the router refuses
                # weights that name a version it does not have.
                user_config["weights"] = {
                    k: w
                    for k, w in (user_config.get("weights") or {}).items()
                    if k in table or w != 0
                }
            router_entry["user_config"] = user_config
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
