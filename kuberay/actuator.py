"""The KubeRay actuator: a plan becomes `spec.serveConfigV2` patches (and scale API calls).

The fleet may span several RayServices (shards); only those whose applications' rendered
config changed are patched, each with its own resourceVersion, and each held on its own
while KubeRay upgrades it. KubeRay applies a changed `serveConfigV2` in place (no new
cluster). The config written always carries every desired replica count (at least 1), so
that KubeRay re-submitting it (after an operator restart, or to a new cluster) never
undoes a scaling decision; zero is reached only through the dashboard's scale API, when
one is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from controller.actuators.base import ApplyResult
from controller.actuators.serve_config import deployed_weights, render_serve_config
from controller.config import AppConfig, GovernorConfig
from controller.decisions import Plan
from controller.errors import ConfigError, PermanentError
from controller.snapshot import Snapshot
from kuberay.client import RayServiceClient
from kuberay.errors import TooLargeError
from kuberay.shards import RayServiceShards, Shard, ShardIndex
from kuberay.status import RayService, RayServiceStatus

log = logging.getLogger(__name__)

DEFAULT_MAX_SERVE_CONFIG_BYTES = 512 * 1024
"""etcd refuses objects over 1.5 MiB; a RayService also carries its cluster spec, a status
that lists every application, and managed fields, so its Serve config stays at a third."""

# libyaml writes the same text as the pure-Python dumper, an order of magnitude faster.
_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SHOWN_NAMES = 20
"""Messages list at most this many application names."""


class Scaler(Protocol):
    """Sets one deployment's replica count at once (the dashboard's external-scaler API)."""

    def scale(self, app: str, deployment: str, replicas: int) -> None:
        """Set `app`/`deployment` to `replicas` replicas (0 allowed)."""
        ...


def hold_reason(name: str, status: RayServiceStatus) -> str | None:
    """Why the actuator must not touch the RayService now, or None."""
    if status.upgrade_in_progress:
        c = status.condition("UpgradeInProgress")
        why = f" ({c.reason})" if c and c.reason else ""
        return f"rayservice {name} reports UpgradeInProgress{why}: holding until it completes"
    pending = status.pending
    if pending.exists and not pending.serving:
        apps = ", ".join(f"{a.name}={a.status}" for a in pending.applications) or "no apps yet"
        return f"pending RayCluster {pending.cluster_name} is not ready ({apps}): holding"
    return None


def dump_serve_config(doc: dict[str, Any]) -> str:
    """The YAML text stored in `spec.serveConfigV2`."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def _deployments(app: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = app.get("deployments") or []
    return {d["name"]: d for d in entries if isinstance(d, dict) and "name" in d}


def describe_changes(
    old: dict[str, Any], new: dict[str, Any], config: GovernorConfig, where: str = "serveConfigV2"
) -> list[str]:
    """One line per governed value that differs between two Serve configs."""
    old_apps = {a.get("name"): a for a in old.get("applications") or []}
    new_apps = {a.get("name"): a for a in new.get("applications") or []}
    lines = []
    for app_cfg in config.applications:
        before, after = old_apps.get(app_cfg.name) or {}, new_apps.get(app_cfg.name) or {}
        if before.get("external_scaler_enabled") != after.get("external_scaler_enabled"):
            lines.append(f"serveConfigV2: {app_cfg.name} external_scaler_enabled -> true")
        for v in app_cfg.versions:
            held_by = app_cfg.serve_app(v.name)
            old_deps = _deployments(old_apps.get(held_by) or {})
            new_deps = _deployments(new_apps.get(held_by) or {})
            was = (old_deps.get(v.deployment) or {}).get("num_replicas")
            now = (new_deps.get(v.deployment) or {}).get("num_replicas")
            if was != now:
                lines.append(f"serveConfigV2: {held_by}/{v.deployment} num_replicas {was} -> {now}")
        w_old = deployed_weights(before, app_cfg.router_deployment)
        w_new = deployed_weights(after, app_cfg.router_deployment)
        if w_old != w_new:
            lines.append(f"serveConfigV2: {app_cfg.name} weights {w_old} -> {w_new}")
    if not lines and old != new:
        lines.append(f"{where}: updated")
    return lines


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return f"[{shown}{f', and {more} more' if more > 0 else ''}]"


@dataclass(frozen=True)
class ShardWrite:
    """The Serve config a plan gives one shard, and what changes in it."""

    shard: Shard
    text: str
    doc: dict[str, Any]
    changes: tuple[str, ...]

    @property
    def size(self) -> int:
        """Bytes of the config text."""
        return len(self.text.encode())


class KubeRayActuator:
    """Makes the shards' Serve configs (and, optionally, live replica counts) match a plan.

    A shard that must hold is left alone and named in the result's `held`; the result's
    `changes` are what the other shards got in the same apply.
    """

    def __init__(
        self,
        client: RayServiceClient,
        shards: RayServiceShards,
        config: GovernorConfig,
        scaler: Callable[[str], Scaler] | None = None,
        *,
        max_serve_config_bytes: int = DEFAULT_MAX_SERVE_CONFIG_BYTES,
    ) -> None:
        self.client = client
        self.shards = shards
        self.config = config
        self.scaler = scaler
        """The scale API of one shard's head, by RayService name."""
        self.max_serve_config_bytes = max_serve_config_bytes

    def use_config(self, config: GovernorConfig) -> None:
        """Work with the versions `config` lists from now on."""
        self.config = config

    def apply(self, plan: Plan, snapshot: Snapshot) -> ApplyResult:
        """Patch the shards whose config the plan changes; hold upgrading ones; scale."""
        index = self.shards.read()
        governed = self._governed_by_shard(index)
        held: dict[str, str] = {}
        writes: list[ShardWrite] = []
        for shard in index.shards:
            apps = governed.get(shard.name)
            if not apps:
                continue
            reason = hold_reason(shard.name, shard.service.status)
            if reason is not None:
                held[shard.name] = reason
                continue
            write = self._render(shard, apps, plan)
            if write is not None:
                writes.append(write)
        self._guard(writes)
        changes: list[str] = []
        patched: set[str] = set()
        for write in writes:
            done, reason = self._write(write, governed[write.shard.name], plan)
            if reason is not None:
                held[write.shard.name] = reason
            elif done is not None:
                patched.add(write.shard.name)
                changes.extend(done)
        if self.scaler is not None:
            # Right after a config change KubeRay has yet to submit it (and with it
            # external_scaler_enabled); the scale API waits for that shard's next tick.
            changes.extend(self._scale(plan, snapshot, index, patched | set(held)))
        return ApplyResult(
            changes=tuple(changes), held="; ".join(held[n] for n in sorted(held)) or None
        )

    def _governed_by_shard(self, index: ShardIndex) -> dict[str, list[AppConfig]]:
        """The governed applications of each shard; raises unless every one has one home."""
        if index.unread:
            raise index.unread[0].error
        duplicated = sorted(a.name for a in self.config.applications if a.name in index.duplicates)
        if duplicated:
            where = {a: list(index.duplicates[a]) for a in duplicated[:SHOWN_NAMES]}
            raise ConfigError(
                f"applications {_names(duplicated)} are each in several RayServices {where}; "
                "an application must live in exactly one"
            )
        by_shard: dict[str, list[AppConfig]] = {}
        missing = []
        for app in self.config.applications:
            shard = index.shard_of(app.name)
            if shard is None:
                missing.append(app.name)
            else:
                by_shard.setdefault(shard.name, []).append(app)
        if missing:
            if all(not s.apps for s in index.shards):
                raise PermanentError(
                    f"{self.shards.describe()}: spec.serveConfigV2 has no applications; deploy "
                    "the manifests from `governor render-manifests` first"
                )
            held_apps = sum(len(s.apps) for s in index.shards)
            raise ConfigError(
                f"applications {_names(missing)} are governed but in none of "
                f"{self.shards.describe()} (they hold {held_apps} applications)"
            )
        return by_shard

    def _render(self, shard: Shard, apps: list[AppConfig], plan: Plan) -> ShardWrite | None:
        """The shard's config with the plan written in, or None when it already says that."""
        # Rendering against the shard's own applications keeps a tick linear in the fleet.
        config = self.config.model_copy(update={"applications": apps})
        doc = render_serve_config(shard.doc, plan, config)
        if doc == shard.doc:
            return None
        changes = describe_changes(shard.doc, doc, config, f"serveConfigV2 of {shard.name}")
        return ShardWrite(shard, dump_serve_config(doc), doc, tuple(changes))

    def _guard(self, writes: list[ShardWrite]) -> None:
        """Refuse every write when any shard's config would outgrow the bound."""
        over = [w for w in writes if w.size > self.max_serve_config_bytes]
        if not over:
            return
        ns = self.client.namespace
        sizes = "; ".join(f"rayservice {ns}/{w.shard.name} would be {w.size} bytes" for w in over)
        raise TooLargeError(
            f"{sizes}: over the {self.max_serve_config_bytes}-byte bound on one serveConfigV2 "
            "(kuberay.max_serve_config_bytes); nothing was written. Move applications to "
            "another RayService (docs/kuberay.md, adding a shard)"
        )

    def _write(
        self, write: ShardWrite, apps: list[AppConfig], plan: Plan
    ) -> tuple[tuple[str, ...] | None, str | None]:
        """Patch one shard at the resourceVersion it was read at: (changes, hold reason)."""
        latest: ShardWrite | None = write
        held: str | None = None

        def build(current: RayService) -> dict[str, Any] | None:
            nonlocal latest, held
            if current is not write.shard.service:
                # A 409 brought a fresh read: decide again from it.
                held = hold_reason(current.name, current.status)
                if held is not None:
                    return None
                latest = self._render(self.shards.shard(current), apps, plan)
                if latest is None:
                    return None
                self._guard([latest])
            return {"spec": {"serveConfigV2": latest.text}} if latest is not None else None

        outcome = self.client.update(write.shard.name, build, current=write.shard.service)
        if held is not None:
            return None, held
        if not outcome.patched or latest is None:
            return None, None
        self.shards.remember(latest.shard.name, latest.text, latest.doc)
        return latest.changes, None

    def _scale(
        self, plan: Plan, snapshot: Snapshot, index: ShardIndex, skip: set[str]
    ) -> list[str]:
        assert self.scaler is not None
        done = []
        for d in plan.replicas:
            shard = index.shard_of(d.app)
            if shard is None or shard.name in skip:
                continue
            try:
                app_cfg = self.config.app(d.app)
                deployment = app_cfg.version(d.version).deployment
            except KeyError:
                continue
            observed = snapshot.version(d.app, d.version)
            target = observed.target_replicas if observed is not None else None
            if target == d.replicas:
                continue
            held_by = app_cfg.serve_app(d.version)
            self.scaler(shard.name).scale(held_by, deployment, d.replicas)
            done.append(f"scale API: {held_by}/{deployment} {target} -> {d.replicas}")
        return done
