"""Sharding keeps a router application and its version applications in one RayService."""

from __future__ import annotations

from typing import Any

from kuberay.sharding import ShardNames, split_serve_config


def _model(name: str, versions: int, padding: int) -> list[dict[str, Any]]:
    table = {f"v{i}": f"{name}-v{i}" for i in range(versions)}
    router = {
        "name": name,
        "import_path": "serving.app:build_router",
        "deployments": [{"name": "router", "user_config": {"versions": table, "weights": {}}}],
    }
    apps = [
        {
            "name": app,
            "route_prefix": None,
            "import_path": "serving.app:build_version",
            "args": {"pad": "x" * padding},
        }
        for app in table.values()
    ]
    return [router, *apps]


def test_each_model_lands_whole_in_one_shard_and_stays_there() -> None:
    apps = [app for m in ("a", "b", "c", "d") for app in _model(m, 3, 400)]
    names = ShardNames(base="fleet", labels={"governor.ray.io/fleet": "x"})
    shards = split_serve_config({"applications": apps}, names, 4096, {})
    assert len(shards) > 1
    home = {a["name"]: shard for shard, doc in shards.items() for a in doc["applications"]}
    for model in ("a", "b", "c", "d"):
        assert len({home[n] for n in home if n.split("-")[0] == model}) == 1, home
    grown = [*apps, *_model("a", 4, 400)[4:]]
    grown[0] = _model("a", 4, 400)[0]
    again = split_serve_config({"applications": grown}, names, 4096, home)
    placed = {a["name"]: s for s, doc in again.items() for a in doc["applications"]}
    assert placed["a-v3"] == placed["a"] == home["a"]
