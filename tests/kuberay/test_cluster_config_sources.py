# Server: the stand-in (tests/kuberay/fake_apiserver.py), which shows the Authorization header
# the client sends.
"""The client connects with a kubeconfig file or with the pod's service account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.config import incluster_config, kube_config

from controller.errors import ConfigError
from kuberay.client import RayServiceClient
from kuberay.connect import api_client
from tests.kuberay.conftest import NAME, NAMESPACE
from tests.kuberay.fake_apiserver import FakeApiServer


def write_kubeconfig(path: Path, server: str, token: str) -> Path:
    """A one-context kubeconfig with a bearer token."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


def test_a_kubeconfig_file_reaches_the_api_server_with_its_token(
    apiserver: FakeApiServer, rayservice: dict[str, Any], tmp_path: Path
) -> None:
    path = write_kubeconfig(tmp_path / "kubeconfig", apiserver.url, "s3cret")
    api = api_client(str(path))
    try:
        service = RayServiceClient(k8s.CustomObjectsApi(api), NAMESPACE).get(NAME)
    finally:
        api.close()

    assert service.name == NAME
    assert apiserver.requests[-1].headers["authorization"].lower() == "bearer s3cret"
    assert api.configuration.retries is False, "retries are counted by our back-off only"


def test_in_a_pod_the_service_account_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("pod-token")
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")

    api = api_client()

    configuration = api.configuration
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.ssl_ca_cert == str(ca)
    assert configuration.get_api_key_with_prefix("BearerToken").lower() == "bearer pod-token"
    api.close()


def test_outside_a_pod_the_default_kubeconfig_is_used(
    apiserver: FakeApiServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    # The client reads $KUBECONFIG once, at import; this is where it keeps the answer.
    monkeypatch.setattr(
        kube_config,
        "KUBE_CONFIG_DEFAULT_LOCATION",
        str(write_kubeconfig(tmp_path / "k", apiserver.url, "t")),
    )

    api = api_client()

    assert api.configuration.host == apiserver.url
    api.close()


def test_a_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kuberay\.kubeconfig"):
        api_client(str(tmp_path / "absent"))
