"""Serve configs for tests, made from the shipped ones."""

from __future__ import annotations

import copy
from typing import Any


def add_version(doc: dict[str, Any], router_app: str, like: str, version: str) -> dict[str, Any]:
    """Add `version` to `router_app` of the Serve config `doc` (in place, and returned): an
    application `<router_app>-<version>` made like version `like`'s, named in the router's
    table at weight 0, as a release would add it."""
    apps = {a["name"]: a for a in doc["applications"]}
    new = copy.deepcopy(apps[f"{router_app}-{like}"])
    new["name"] = f"{router_app}-{version}"
    new["args"]["version"]["name"] = version
    (deployment,) = new["deployments"]
    deployment["name"] = f"model_{version}"
    doc["applications"].insert(doc["applications"].index(apps[f"{router_app}-{like}"]) + 1, new)
    (router,) = apps[router_app]["deployments"]
    user_config = router["user_config"]
    user_config["versions"] = {**user_config["versions"], version: new["name"]}
    user_config["weights"] = {**user_config["weights"], version: 0}
    return doc
