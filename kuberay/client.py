"""RayService client on the `kubernetes` package: read, watch, patch with optimistic concurrency."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from controller.errors import ConflictError, TemporaryError
from kuberay.errors import Operation, k8s_call, translate_api_error
from kuberay.retry import Backoff, Sleep, with_backoff
from kuberay.status import RayService, parse_rayservice

GROUP = "ray.io"
VERSION = "v1"
PLURAL = "rayservices"
FIELD_MANAGER = "governor"

ServeConfigRender = Callable[[RayService], str | None]
"""Given the freshly read RayService, the new `serveConfigV2`, or None to leave it."""

PatchBuilder = Callable[[RayService], dict[str, Any] | None]
"""Given the freshly read RayService, a merge patch (without resourceVersion), or None."""


@dataclass(frozen=True)
class WatchEvent:
    """One event of a RayService watch: ADDED, MODIFIED or DELETED."""

    type: str
    service: RayService


@dataclass(frozen=True)
class UpdateOutcome:
    """The RayService after an update, whether it was patched, and in how many attempts."""

    service: RayService
    patched: bool
    attempts: int


class RayServiceClient:
    """RayServices of one namespace; every failure leaves as a typed error."""

    def __init__(
        self,
        api: k8s.CustomObjectsApi,
        namespace: str,
        *,
        request_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        sleep: Sleep = time.sleep,
        max_conflicts: int = 5,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.request_timeout_s = request_timeout_s
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.max_conflicts = max_conflicts

    def _op(self, verb: str, name: str | None = None, resource: str = PLURAL) -> Operation:
        return Operation(verb, resource, GROUP, self.namespace, name)

    def _call(self, op: Operation, fn: Callable[[], Any]) -> Any:
        return with_backoff(lambda: k8s_call(op, fn), self.backoff, self.sleep)

    def get(self, name: str) -> RayService:
        """Read one RayService."""
        obj = self._call(
            self._op("get", name),
            lambda: self.api.get_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                _request_timeout=self.request_timeout_s,
            ),
        )
        return parse_rayservice(obj)

    def get_status(self, name: str) -> RayService:
        """Read one RayService through its status subresource."""
        obj = self._call(
            self._op("get", name, resource=f"{PLURAL}/status"),
            lambda: self.api.get_namespaced_custom_object_status(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                _request_timeout=self.request_timeout_s,
            ),
        )
        return parse_rayservice(obj)

    def list(self, label_selector: str | None = None) -> list[RayService]:
        """Every RayService in the namespace (optionally filtered by labels)."""
        doc = self._call(
            self._op("list"),
            lambda: self.api.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                label_selector=label_selector,
                _request_timeout=self.request_timeout_s,
            ),
        )
        items = doc.get("items", []) if isinstance(doc, dict) else []
        return [parse_rayservice(i) for i in items]

    def watch(
        self, name: str | None = None, timeout_s: int = 60, resource_version: str | None = None
    ) -> Iterator[WatchEvent]:
        """Stream changes to one RayService (or all) for at most `timeout_s` seconds."""
        op = self._op("watch", name)
        kwargs: dict[str, Any] = {
            "timeout_seconds": int(timeout_s),
            "_request_timeout": float(timeout_s) + self.request_timeout_s,
        }
        if name is not None:
            kwargs["field_selector"] = f"metadata.name={name}"
        if resource_version is not None:
            kwargs["resource_version"] = resource_version
        w = k8s_watch.Watch()
        try:
            for event in w.stream(
                self.api.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                **kwargs,
            ):
                kind = str(event.get("type"))
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    yield WatchEvent(kind, parse_rayservice(event.get("raw_object")))
        except ApiException as err:
            raise translate_api_error(err, op) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise TemporaryError(f"{op.describe()}: {type(err).__name__}: {err}") from err
        finally:
            w.stop()

    def update(
        self, name: str, build: PatchBuilder, current: RayService | None = None
    ) -> UpdateOutcome:
        """Read, build a merge patch from the fresh object, patch at its resourceVersion.

        `current`, when given, is a read made this tick and stands in for the first read.
        On a 409 the object is read again and the patch rebuilt, up to `max_conflicts` times.
        """
        for attempt in range(1, self.max_conflicts + 1):
            if current is None or attempt > 1:
                current = self.get(name)
            patch = build(current)
            if patch is None:
                return UpdateOutcome(current, patched=False, attempts=attempt)
            body = dict(patch)
            meta = dict(body.get("metadata") or {})
            meta["resourceVersion"] = current.resource_version
            body["metadata"] = meta
            try:
                obj = self._call(self._op("patch", name), partial(self._patch, name, body))
            except ConflictError:
                continue
            return UpdateOutcome(parse_rayservice(obj), patched=True, attempts=attempt)
        raise ConflictError(
            f"patch {PLURAL}.{GROUP} {self.namespace}/{name}: still conflicting after "
            f"{self.max_conflicts} fresh reads",
            self.backoff.base_s,
        )

    def _patch(self, name: str, body: dict[str, Any]) -> Any:
        return self.api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            body,
            field_manager=FIELD_MANAGER,
            _request_timeout=self.request_timeout_s,
        )

    def patch_serve_config(self, name: str, render: ServeConfigRender) -> UpdateOutcome:
        """Set `spec.serveConfigV2` to what `render` makes of the fresh object (if it differs)."""

        def build(current: RayService) -> dict[str, Any] | None:
            text = render(current)
            if text is None or text == current.serve_config_v2:
                return None
            return {"spec": {"serveConfigV2": text}}

        return self.update(name, build)

    def patch_annotations(
        self, name: str, build: Callable[[RayService], dict[str, str | None] | None]
    ) -> UpdateOutcome:
        """Set (or, with None, remove) annotations computed from the fresh object."""

        def patch(current: RayService) -> dict[str, Any] | None:
            changes = build(current)
            if not changes:
                return None
            if all(current.annotations.get(k) == v for k, v in changes.items()):
                return None
            return {"metadata": {"annotations": changes}}

        return self.update(name, patch)
