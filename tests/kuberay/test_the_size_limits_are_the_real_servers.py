# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh).
"""The limits the daemon's size guards are built on are the real server's: a ConfigMap's
values up to MAX_DATA_BYTES (`data_bytes` also counts the keys, so it refuses first),
256 KiB of annotations per object, and etcd's 1.5 MiB request limit on any object, which
the API server reports as a server error.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client as k8s

from kuberay.configmaps import MAX_DATA_BYTES, data_bytes
from tests.kuberay.conftest import NAMESPACE, rayservice_object

pytestmark = pytest.mark.k8s

MAX_ANNOTATIONS_BYTES = 256 * 1024
ETCD_MAX_REQUEST_BYTES = 1536 * 1024


def configmap(name: str, data: dict[str, str]) -> k8s.V1ConfigMap:
    """A ConfigMap in NAMESPACE."""
    return k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name), data=data)


def refused(call: Any) -> k8s.ApiException:
    """The API server's refusal of `call()`."""
    with pytest.raises(k8s.ApiException) as err:
        call()
    return err.value


def message(err: k8s.ApiException) -> str:
    """The message of the Status the server answered with."""
    return str(json.loads(err.body)["message"])


def test_a_configmap_of_1_mib_of_values_is_stored_and_one_byte_more_is_refused(
    admin_api: k8s.ApiClient,
) -> None:
    core = k8s.CoreV1Api(admin_api)
    full = {"state.json": "x" * MAX_DATA_BYTES}

    core.create_namespaced_config_map(NAMESPACE, configmap("at-the-bound", full))
    over = {"state.json": full["state.json"] + "x"}
    err = refused(lambda: core.create_namespaced_config_map(NAMESPACE, configmap("over", over)))

    assert err.status == 422
    assert f"Too long: may not be more than {MAX_DATA_BYTES} bytes" in message(err)
    # The server counts the values only; ours counts the keys too, so it is never laxer.
    assert data_bytes(full) > MAX_DATA_BYTES


def with_annotation(size: int, name: str) -> dict[str, Any]:
    """A RayService whose one annotation (key plus value) is `size` bytes."""
    obj = rayservice_object(name=name)
    del obj["status"]
    key = "governor.ray.io/state"
    obj["metadata"]["annotations"] = {key: "x" * (size - len(key))}
    return obj


def test_annotations_up_to_256_kib_are_stored_and_more_are_refused(
    admin_api: k8s.ApiClient,
) -> None:
    custom = k8s.CustomObjectsApi(admin_api)

    def create(obj: dict[str, Any]) -> None:
        custom.create_namespaced_custom_object("ray.io", "v1", NAMESPACE, "rayservices", obj)

    create(with_annotation(MAX_ANNOTATIONS_BYTES, "at-the-bound"))
    err = refused(lambda: create(with_annotation(MAX_ANNOTATIONS_BYTES + 1, "over")))

    assert err.status == 422
    assert f"Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes" in message(err)


def with_serve_config_bytes(size: int, name: str) -> dict[str, Any]:
    """A RayService whose `serveConfigV2` is a YAML comment of `size` bytes."""
    obj = rayservice_object(name=name)
    del obj["status"]
    obj["spec"]["serveConfigV2"] = "#" + "x" * (size - 1)
    return obj


def test_etcd_refuses_an_object_over_its_request_limit_as_a_server_error(
    admin_api: k8s.ApiClient,
) -> None:
    custom = k8s.CustomObjectsApi(admin_api)

    def create(obj: dict[str, Any]) -> None:
        custom.create_namespaced_custom_object("ray.io", "v1", NAMESPACE, "rayservices", obj)

    create(with_serve_config_bytes(ETCD_MAX_REQUEST_BYTES - 64 * 1024, "under"))
    err = refused(lambda: create(with_serve_config_bytes(ETCD_MAX_REQUEST_BYTES, "over")))

    assert err.status == 500
    assert "request is too large" in message(err)
