# Server: none; rendering only.
"""`governor render-manifests` splits a Serve config too large for one RayService into shards."""

from __future__ import annotations

import copy
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from kuberay.render import (
    GOVERNOR_CONFIG,
    MANIFESTS,
    RAYSERVICE_FILE,
    SERVE_CONFIG,
    build_kustomization,
    render_manifests_command,
)
from tests.kuberay.conftest import REPO
from tests.kuberay.crd_schema import as_raycluster, crd_errors

BOUND = 32 * 1024
LABEL = ("governor.ray.io/fleet", "governor-fleet")


def _root(tmp_path: Path, apps: list[str], **kuberay: Any) -> Path:
    """A copy of the repository's configs and manifests with `apps` in the Serve config."""
    for part in ("configs", "kuberay/templates", "kuberay/manifests"):
        shutil.copytree(REPO / part, tmp_path / part)
    write_apps(tmp_path, apps)
    governor = yaml.safe_load((tmp_path / GOVERNOR_CONFIG).read_text())
    governor["kuberay"].update({"max_serve_config_bytes": BOUND, **kuberay})
    (tmp_path / GOVERNOR_CONFIG).write_text(yaml.safe_dump(governor, sort_keys=False))
    return tmp_path


def write_apps(root: Path, apps: list[str]) -> None:
    """Make the Serve config hold `apps`, each like the repository's first model: a router
    application and the application of its one version, `<app>-v1`."""
    serve = yaml.safe_load((REPO / SERVE_CONFIG).read_text())
    router, version = serve["applications"][:2]
    serve["applications"] = []
    for a in apps:
        mine = copy.deepcopy(router)
        mine.update(name=a, route_prefix=f"/{a}")
        mine["deployments"][0]["user_config"] = {"versions": {"v1": f"{a}-v1"}, "weights": {"v1": 100}}
        serve["applications"] += [mine, {**copy.deepcopy(version), "name": f"{a}-v1"}]
    (root / SERVE_CONFIG).write_text(yaml.safe_dump(serve, sort_keys=False))


def serve_apps(apps: list[str]) -> list[str]:
    """The Serve applications write_apps makes for `apps`."""
    return [name for a in apps for name in (a, f"{a}-v1")]


def rayservices(root: Path) -> list[dict[str, Any]]:
    """The RayServices the kustomization builds."""
    return [d for d in build_kustomization(root / MANIFESTS) if d["kind"] == "RayService"]


def placement(root: Path) -> dict[str, str]:
    """Application -> the RayService it is rendered into."""
    out = {}
    for rs in rayservices(root):
        for app in yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]:
            out[app["name"]] = rs["metadata"]["name"]
    return out


APPS = [f"model-{i:03d}" for i in range(80)]


def test_a_fleet_over_the_bound_is_split_into_labelled_shards_each_under_it(
    tmp_path: Path,
) -> None:
    root = _root(tmp_path, APPS)

    assert render_manifests_command(root) == 0

    found = rayservices(root)
    assert [r["metadata"]["name"] for r in found] == [
        "governor-fleet",
        *(f"governor-fleet-{i}" for i in range(1, len(found))),
    ]
    assert len(found) >= 3
    counts: Counter[str] = Counter()
    for rs in found:
        text = rs["spec"]["serveConfigV2"]
        assert len(text.encode()) <= BOUND
        doc = yaml.safe_load(text)
        ServeDeploySchema.model_validate(doc)
        assert doc["http_options"]["port"] == 8000, "settings beside the apps go to every shard"
        counts.update(a["name"] for a in doc["applications"])
        assert rs["metadata"]["labels"][LABEL[0]] == LABEL[1]
        assert crd_errors(rs) == [] and crd_errors(as_raycluster(rs)) == []
    assert counts == Counter(serve_apps(APPS)), "every application is in exactly one shard"
    homes = placement(root)
    assert all(homes[a] == homes[f"{a}-v1"] for a in APPS), "a model stays in one shard"
    assert render_manifests_command(root, check=True) == 0


def test_rendering_again_keeps_every_application_where_it_was(tmp_path: Path) -> None:
    root = _root(tmp_path, APPS)
    render_manifests_command(root)
    before = placement(root)
    last = rayservices(root)[-1]["metadata"]["name"]
    leaving = next(a for a in APPS if before[a] == "governor-fleet")

    # A new application is listed first; one application of the first shard leaves.
    write_apps(root, ["newcomer", *(a for a in APPS if a != leaving)])
    assert render_manifests_command(root) == 0

    after = placement(root)
    gone = {leaving, f"{leaving}-v1"}
    assert {a: after[a] for a in before if a not in gone} == {
        a: s for a, s in before.items() if a not in gone
    }
    assert after["newcomer"] in ("governor-fleet", last), "it goes where there is room"


def test_named_shards_that_cannot_hold_the_fleet_are_refused_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _root(
        tmp_path,
        APPS,
        rayservice_selector=None,
        rayservices=["governor-fleet", "governor-fleet-b"],
        dashboard_url="http://{rayservice}-head-svc:8265",
    )
    before = (root / MANIFESTS / RAYSERVICE_FILE).read_text()

    assert render_manifests_command(root) == 2

    err = capsys.readouterr().err
    assert "do not fit in rayservices ['governor-fleet', 'governor-fleet-b']" in err
    assert "add a RayService to kuberay.rayservices" in err
    assert (root / MANIFESTS / RAYSERVICE_FILE).read_text() == before, "nothing is written"


def test_one_application_larger_than_the_bound_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _root(tmp_path, APPS[:3], max_serve_config_bytes=1000)

    assert render_manifests_command(root) == 2

    err = " ".join(capsys.readouterr().err.split())
    assert "applications model-000, model-000-v1 (a router and its versions" in err
    assert "make a serveConfigV2 of" in err
