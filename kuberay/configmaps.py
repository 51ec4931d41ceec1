"""ConfigMaps of one namespace: read, create, and merge-patch data keys at a resourceVersion."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from kuberay.client import FIELD_MANAGER
from kuberay.errors import NotFoundError, Operation, k8s_call
from kuberay.retry import Backoff, Sleep, with_backoff

RESOURCE = "configmaps"
MERGE_PATCH = "application/merge-patch+json"
MAX_DATA_BYTES = 1024 * 1024
"""The API server refuses a ConfigMap whose data (keys and values) exceeds 1 MiB."""


@dataclass(frozen=True)
class ConfigMapData:
    """A ConfigMap as read or written: its resourceVersion and its `data`."""

    name: str
    resource_version: str
    data: dict[str, str]


def data_bytes(data: dict[str, str]) -> int:
    """The size the API server counts against a ConfigMap's limit."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in data.items())


def _view(obj: k8s.V1ConfigMap) -> ConfigMapData:
    meta = obj.metadata or k8s.V1ObjectMeta()
    return ConfigMapData(
        name=str(meta.name or ""),
        resource_version=str(meta.resource_version or ""),
        data=dict(obj.data or {}),
    )


class ConfigMapClient:
    """ConfigMaps of one namespace; every failure leaves as a typed error (409: ConflictError)."""

    def __init__(
        self,
        api: k8s.CoreV1Api,
        namespace: str,
        *,
        request_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.request_timeout_s = request_timeout_s
        self.backoff = backoff or Backoff()
        self.sleep = sleep

    def _call(self, verb: str, name: str | None, fn: Callable[[], Any]) -> Any:
        op = Operation(verb, RESOURCE, "", self.namespace, name)
        return with_backoff(lambda: k8s_call(op, fn), self.backoff, self.sleep)

    def get(self, name: str) -> ConfigMapData | None:
        """Read one ConfigMap; None when it does not exist."""
        try:
            obj = self._call(
                "get",
                name,
                lambda: self.api.read_namespaced_config_map(
                    name, self.namespace, _request_timeout=self.request_timeout_s
                ),
            )
        except NotFoundError:
            return None
        return _view(obj)

    def create(self, name: str, data: dict[str, str], labels: dict[str, str]) -> ConfigMapData:
        """Create a ConfigMap; ConflictError when it exists already."""
        body = k8s.V1ConfigMap(
            api_version="v1",
            kind="ConfigMap",
            metadata=k8s.V1ObjectMeta(name=name, namespace=self.namespace, labels=labels),
            data=data,
        )
        obj = self._call(
            "create",
            name,
            lambda: self.api.create_namespaced_config_map(
                self.namespace,
                body,
                field_manager=FIELD_MANAGER,
                _request_timeout=self.request_timeout_s,
            ),
        )
        return _view(obj)

    def patch(
        self, name: str, changes: dict[str, str | None], resource_version: str
    ) -> ConfigMapData:
        """Set (or, with None, remove) data keys if the ConfigMap is still at that version."""
        body = {"metadata": {"resourceVersion": resource_version}, "data": changes}
        obj = self._call(
            "patch",
            name,
            lambda: self.api.patch_namespaced_config_map(
                name,
                self.namespace,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE_PATCH,
                _request_timeout=self.request_timeout_s,
            ),
        )
        return _view(obj)
