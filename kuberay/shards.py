"""Which RayService holds which Serve application: the fleet's shards, read from the objects.

A fleet too large for one `serveConfigV2` is spread over several RayServices (named in the
config, or selected by labels); each one's Serve config holds some of the applications,
and those documents are the only record of where an application lives. A read parses each
RayService's config at most once, and not at all while its text is what was parsed before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.config import KubeRayTarget
from controller.errors import GovernorError
from kuberay.client import RayServiceClient
from kuberay.status import RayService, parse_serve_config


@dataclass(frozen=True)
class Shard:
    """One RayService and its parsed Serve config (shared between readers: never mutated)."""

    service: RayService
    doc: dict[str, Any]
    apps: dict[str, dict[str, Any]]
    """The config's application documents by name."""

    @property
    def name(self) -> str:
        """The RayService's name."""
        return self.service.name


@dataclass(frozen=True)
class UnreadShard:
    """A RayService (or the whole selection) that could not be read or parsed."""

    what: str
    error: GovernorError


@dataclass(frozen=True)
class ShardIndex:
    """The shards of one read, and where each application lives."""

    shards: tuple[Shard, ...] = ()
    unread: tuple[UnreadShard, ...] = ()
    homes: dict[str, Shard] = field(default_factory=dict)
    """Application name -> the shard whose config holds it (the first by name, if several)."""
    duplicates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Applications found in more than one RayService, and where."""

    def shard_of(self, app: str) -> Shard | None:
        """The shard that holds `app`, if a readable one does."""
        return self.homes.get(app)


def index_shards(shards: Sequence[Shard], unread: Sequence[UnreadShard] = ()) -> ShardIndex:
    """Index shards by application, noting applications that more than one shard holds."""
    ordered = tuple(sorted(shards, key=lambda s: s.name))
    homes: dict[str, Shard] = {}
    seen: dict[str, list[str]] = {}
    for shard in ordered:
        for app in shard.apps:
            homes.setdefault(app, shard)
            seen.setdefault(app, []).append(shard.name)
    duplicates = {a: tuple(names) for a, names in seen.items() if len(names) > 1}
    return ShardIndex(ordered, tuple(unread), homes, duplicates)


def _app_docs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    apps: dict[str, dict[str, Any]] = {}
    for a in doc.get("applications") or []:
        if isinstance(a, dict) and isinstance(a.get("name"), str):
            apps.setdefault(a["name"], a)
    return apps


class RayServiceShards:
    """Reads the fleet's RayServices (by name or by label selector) into a ShardIndex."""

    def __init__(
        self,
        client: RayServiceClient,
        *,
        names: Sequence[str] = (),
        selector: str | None = None,
    ) -> None:
        if bool(names) == (selector is not None):
            raise ValueError("shards are named or selected, exactly one of the two")
        self.client = client
        self.names = tuple(names)
        self.selector = selector
        self._parsed: dict[str, tuple[str, dict[str, Any]]] = {}

    @classmethod
    def from_config(cls, client: RayServiceClient, kr: KubeRayTarget) -> RayServiceShards:
        """The shards a `kuberay` config section names."""
        if kr.rayservice_selector is not None:
            return cls(client, selector=kr.rayservice_selector)
        names = [kr.rayservice] if kr.rayservice else list(kr.rayservices)
        return cls(client, names=names)

    def describe(self) -> str:
        """Which RayServices these are, for messages."""
        ns = self.client.namespace
        if self.selector is not None:
            return f"the rayservices in {ns} selected by {self.selector!r}"
        if len(self.names) == 1:
            return f"rayservice {ns}/{self.names[0]}"
        return f"rayservices {list(self.names)} in {ns}"

    def read(self) -> ShardIndex:
        """Read every shard now; one that cannot be read or parsed is listed, not raised."""
        services: list[RayService] = []
        unread: list[UnreadShard] = []
        if self.selector is not None:
            try:
                services = self.client.list(label_selector=self.selector)
            except GovernorError as err:
                unread.append(UnreadShard(self.describe(), err))
        else:
            for name in self.names:
                try:
                    services.append(self.client.get(name))
                except GovernorError as err:
                    unread.append(UnreadShard(f"rayservice {self.client.namespace}/{name}", err))
        shards = []
        for service in services:
            try:
                shards.append(self.shard(service))
            except GovernorError as err:
                where = f"rayservice {service.namespace}/{service.name}"
                unread.append(UnreadShard(where, err))
        present = {s.name for s in services}
        for gone in set(self._parsed) - present:
            if self.selector is not None or gone not in self.names:
                del self._parsed[gone]
        return index_shards(shards, unread)

    def shard(self, service: RayService) -> Shard:
        """One RayService as a Shard, parsing its Serve config only if its text changed."""
        text = service.serve_config_v2 or ""
        cached = self._parsed.get(service.name)
        if cached is not None and cached[0] == text:
            doc = cached[1]
        else:
            doc = parse_serve_config(text, f"rayservice {service.namespace}/{service.name}")
            self._parsed[service.name] = (text, doc)
        return Shard(service, doc, _app_docs(doc))

    def remember(self, name: str, text: str, doc: dict[str, Any]) -> None:
        """Record a config just written, so the next read need not parse it again."""
        self._parsed[name] = (text, doc)
