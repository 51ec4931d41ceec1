"""Validate objects against KubeRay's own CRD schemas, as strictly as the API server would.

The CRD's openAPIV3Schema is a structural schema: the API server drops (or, with strict
field validation, refuses) fields the schema does not name. jsonschema would accept
them, so every object schema without `additionalProperties` or
`x-kubernetes-preserve-unknown-fields` is closed here. `nullable` and
`x-kubernetes-int-or-string` are translated; other `x-kubernetes-*` keywords are
annotations jsonschema ignores.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.kuberay.conftest import PEERS

CRDS = PEERS / "crds"


def _structural(node: Any) -> Any:
    if isinstance(node, list):
        return [_structural(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _structural(v) for k, v in node.items()}
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_schema(filename: str, version: str = "v1") -> dict[str, Any]:
    """The closed openAPIV3Schema of one version of a CRD file in the peers folder."""
    # libyaml when present: the CRD files are 18,000 lines each.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load((CRDS / filename).read_text(), Loader=loader)
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return _structural(v["schema"]["openAPIV3Schema"])  # type: ignore[no-any-return]
    raise KeyError(f"{filename} has no version {version}")


SCHEMAS = {
    ("ray.io/v1", "RayService"): "ray.io_rayservices.yaml",
    ("ray.io/v1", "RayCluster"): "ray.io_rayclusters.yaml",
}


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Every schema violation of a RayService or RayCluster, as `path: message` lines."""
    schema = crd_schema(SCHEMAS[(obj["apiVersion"], obj["kind"])])
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))
    ]


def as_raycluster(rayservice: dict[str, Any]) -> dict[str, Any]:
    """The RayCluster a RayService's `rayClusterConfig` becomes."""
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": f"{rayservice['metadata']['name']}-cluster"},
        "spec": rayservice["spec"]["rayClusterConfig"],
    }


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every YAML document in a file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
