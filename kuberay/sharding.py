"""Splitting a fleet's Serve config over RayServices, each one's config under a size bound.

An application already placed stays where it is (moving it would restart it on another
cluster); new applications go to the first shard with room, and, when the RayServices
are selected by labels, a new shard is opened when none has room.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from controller.config import KubeRayTarget
from controller.errors import ConfigError


def equality_labels(selector: str, where: str) -> dict[str, str]:
    """The labels an equality selector (`k=v,k2=v2`) asks for; ConfigError for other forms."""
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in selector.split(","))):
        key, sep, value = part.partition("=")
        value = value.removeprefix("=")
        if not sep or key.endswith("!") or not key.strip() or not value.strip():
            raise ConfigError(
                f"{where}: {selector!r}: manifests can be rendered only for a selector of "
                "`key=value` terms, which every shard then carries as labels"
            )
        labels[key.strip()] = value.strip()
    return labels


@dataclass(frozen=True)
class ShardNames:
    """The RayServices a fleet may use: named ones, or `base`, `base-1`, ... made as needed."""

    fixed: tuple[str, ...] = ()
    base: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_target(cls, kr: KubeRayTarget, base: str, where: str) -> ShardNames:
        """The shard names a `kuberay` config section allows; `base` names generated ones."""
        if kr.rayservice_selector is not None:
            return cls(base=base, labels=equality_labels(kr.rayservice_selector, where))
        return cls(fixed=(kr.rayservice,) if kr.rayservice else tuple(kr.rayservices))

    @property
    def grows(self) -> bool:
        """Whether new shards are made as needed."""
        return not self.fixed

    def generated(self, i: int) -> str:
        """The name of generated shard `i`."""
        return self.base if i == 0 else f"{self.base}-{i}"

    def position(self, name: str) -> int | None:
        """Where `name` comes in the shard order, or None if it is not one of these names."""
        if self.fixed:
            return self.fixed.index(name) if name in self.fixed else None
        if name == self.base:
            return 0
        m = re.fullmatch(re.escape(self.base) + r"-([1-9][0-9]*)", name)
        return int(m[1]) if m else None


# libyaml writes the same text as the pure-Python dumper, an order of magnitude faster.
_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_serve_config(doc: dict[str, Any] | list[Any]) -> str:
    """The `serveConfigV2` text of a rendered shard."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False)


def _size(text: str) -> int:
    return len(text.encode())


class _Packing:
    """Applications (by index) per shard, and the bytes each shard's config takes so far."""

    def __init__(self, names: ShardNames, base: int, bound: int) -> None:
        self.names = names
        self.base = base
        self.bound = bound
        self.shards: dict[str, list[int]] = {n: [] for n in names.fixed}
        self.used: dict[str, int] = dict.fromkeys(names.fixed, base)

    def order(self, name: str) -> int:
        """Where a shard comes among the others."""
        return self.names.position(name) or 0

    def fits(self, name: str, size: int) -> bool:
        """Whether `size` more bytes fit in shard `name` (which may not exist yet)."""
        return self.used.get(name, self.base) + size <= self.bound

    def put(self, name: str, app: int, size: int) -> None:
        """Place an application in shard `name`, making the shard if needed."""
        self.shards.setdefault(name, []).append(app)
        self.used[name] = self.used.get(name, self.base) + size

    def room(self, size: int) -> str | None:
        """The first shard with room for `size` bytes, or a new one; None when none may be."""
        for name in sorted(self.shards, key=self.order):
            if self.fits(name, size):
                return name
        if not self.names.grows:
            return None
        return next(
            n
            for n in map(self.names.generated, range(len(self.shards) + 1))
            if n not in self.shards
        )


def _units(apps: list[dict[str, Any]]) -> list[list[int]]:
    """Indices of applications that must share a RayService, in the order of their first.

    A router application and the applications its router's `user_config.versions` names
    are one unit: a cross-application handle reaches only within one Serve instance.
    """
    position = {str(a.get("name")): i for i, a in enumerate(apps)}
    owner: dict[int, int] = {}
    for i, app in enumerate(apps):
        for d in app.get("deployments") or []:
            table = (d.get("user_config") or {}).get("versions") if isinstance(d, dict) else None
            if isinstance(table, dict):
                for name in table.values():
                    j = position.get(str(name))
                    if j is not None and j != i:
                        owner.setdefault(j, i)
    units: dict[int, list[int]] = {}
    for i in range(len(apps)):
        units.setdefault(owner.get(i, i), []).append(i)
    return sorted(units.values(), key=min)


def split_serve_config(
    serve: dict[str, Any], names: ShardNames, bound: int, placed: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Each shard's Serve config (in shard order), every one at most `bound` bytes.

    `placed` says where applications were rendered before; they stay there while it has room.
    """
    common = {k: v for k, v in serve.items() if k != "applications"}
    apps = [a for a in serve.get("applications") or [] if isinstance(a, dict)]
    # Under a block mapping PyYAML writes list items unindented, as a top-level list.
    base = _size(dump_serve_config({**common, "applications": []})) - len(" []")
    sizes = [_size(dump_serve_config([a])) for a in apps]
    units = _units(apps)
    for unit in units:
        size = sum(sizes[i] for i in unit)
        if base + size > bound:
            named = [str(apps[i].get("name")) for i in unit]
            what = (
                f"application {named[0]} alone makes"
                if len(unit) == 1
                else f"applications {', '.join(named)} (a router and its versions, which "
                "share a RayService) make"
            )
            raise ConfigError(
                f"{what} a serveConfigV2 of {base + size} bytes, over the {bound}-byte bound "
                "(kuberay.max_serve_config_bytes)"
            )
    packing = _Packing(names, base, bound)
    waiting = []
    for unit in units:
        size = sum(sizes[i] for i in unit)
        homes = [placed.get(str(apps[i].get("name"))) for i in unit]
        home = next((h for h in homes if h is not None), None)
        if home is not None and names.position(home) is not None and packing.fits(home, size):
            for i in unit:
                packing.put(home, i, sizes[i])
        else:
            waiting.append(unit)
    for unit in waiting:
        size = sum(sizes[i] for i in unit)
        home = packing.room(size)
        if home is None:
            raise ConfigError(
                f"the applications do not fit in rayservices {list(names.fixed)} with at most "
                f"{bound} bytes of serveConfigV2 each; add a RayService to "
                "kuberay.rayservices (docs/kuberay.md, adding a shard)"
            )
        for i in unit:
            packing.put(home, i, sizes[i])
    if not packing.shards:
        packing.shards[names.generated(0)] = []
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(packing.shards, key=packing.order):
        doc = {**common, "applications": [apps[i] for i in sorted(packing.shards[name])]}
        size = _size(dump_serve_config(doc))
        if size > bound:
            raise ConfigError(
                f"rayservice {name}: the rendered serveConfigV2 is {size} bytes, over the "
                f"{bound}-byte bound (kuberay.max_serve_config_bytes)"
            )
        out[name] = doc
    return out
