"""A real Kubernetes control plane for the tests: etcd and kube-apiserver on loopback ports.

The binaries are the ones `scripts/build-k8s.sh` builds from their Go modules. The API
server runs with RBAC authorization, a service-account token issuer whose signing key is
made here, a static admin token for the tests, and KubeRay's CRDs installed. Everything
started is stopped by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes import client as k8s

from kuberay.connect import api_client

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO.parent / "shared" / "peers" / "kuberay" / "crds"
BUILD_SCRIPT = REPO / "scripts" / "build-k8s.sh"
BINARIES = ("kube-apiserver", "etcd", "ray-operator")
ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT_S = 180.0


class MissingBinariesError(RuntimeError):
    """The control plane's binaries have not been built."""


def binaries_dir() -> Path:
    """The folder `scripts/build-k8s.sh` builds into; MissingBinariesError if any is missing."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-dir"], capture_output=True, text=True, check=True
    )
    folder = Path(out.stdout.strip())
    missing = [name for name in BINARIES if not (folder / name).is_file()]
    if missing:
        raise MissingBinariesError(
            f"{', '.join(missing)} not built in {folder}: run scripts/build-k8s.sh "
            "(make test runs it) to build the real control plane the KubeRay tests use"
        )
    return folder


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM the process by its PID, then SIGKILL it if it outlives `timeout_s`."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)


def write_signing_key(folder: Path) -> Path:
    """A fresh RSA key for the service-account token issuer, as PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "sa.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for a failure message."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def kubeconfig_doc(server: str, ca_file: Path, token: str, user: str) -> dict[str, Any]:
    """A kubeconfig with one cluster, one user authenticated by a bearer token."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "test", "user": user}}],
        "current-context": user,
    }


@dataclass
class ControlPlane:
    """etcd plus kube-apiserver in `workdir`, on loopback ports picked at start."""

    binaries: Path
    workdir: Path
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    nobody_token: str = field(default_factory=lambda: secrets.token_hex(16))
    """A user that authenticates and is granted nothing."""
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The API server's HTTPS URL."""
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def ca_file(self) -> Path:
        """The API server's self-signed serving certificate and the CA that signed it."""
        return self.workdir / "certs" / "apiserver.crt"

    @property
    def kubeconfig(self) -> Path:
        """A kubeconfig for the admin (group system:masters)."""
        return self.workdir / "admin.kubeconfig"

    def log(self, name: str) -> Path:
        """Where process `name` writes its output."""
        return self.workdir / f"{name}.log"

    # -- processes ------------------------------------------------------------------------

    def _spawn(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        with self.log(name).open("ab") as out:
            process = subprocess.Popen(
                list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.processes[name] = process
        return process

    def start_etcd(self) -> None:
        """Start etcd and wait until it answers its health check."""
        self._spawn(
            "etcd",
            [
                str(self.binaries / "etcd"),
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-url=http://127.0.0.1:{self.etcd_port}",
                f"--listen-peer-url=http://127.0.0.1:{self.etcd_peer_port}",
            ],
        )
        self._wait("etcd", f"http://127.0.0.1:{self.etcd_port}/health", verify=False)

    def apiserver_argv(self) -> list[str]:
        """The kube-apiserver command line."""
        certs = self.workdir / "certs"
        key = self.workdir / "sa.key"
        return [
            str(self.binaries / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--cert-dir={certs}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={key}",
            f"--service-account-signing-key-file={key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            # No node ever registers: there is no kubelet, and the kubernetes Service's
            # endpoints would name a loopback address the validation refuses.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]

    def start_apiserver(self) -> None:
        """Start kube-apiserver (etcd must run) and wait until /readyz answers ok."""
        self._spawn("kube-apiserver", self.apiserver_argv())
        self._wait("kube-apiserver", f"{self.url}/readyz", verify=True)

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver by its PID; etcd keeps the data."""
        process = self.processes.pop("kube-apiserver", None)
        if process is not None:
            stop_process(process)

    def _wait(self, name: str, url: str, *, verify: bool) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        last = "no answer"
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}:\n{tail(self.log(name))}"
                )
            # The self-signed certificate exists only once the API server has started.
            check: bool | ssl.SSLContext = False
            if verify and self.ca_file.exists():
                check = ssl.create_default_context(cafile=str(self.ca_file))
            try:
                answer = httpx.get(url, headers=headers, verify=check, timeout=5.0)
                if answer.status_code == 200 and (check or not verify):
                    return
                last = f"HTTP {answer.status_code}: {answer.text[:200]}"
            except httpx.HTTPError as err:
                last = f"{type(err).__name__}: {err}"
            time.sleep(0.5)
        raise RuntimeError(
            f"{name} not ready within {START_TIMEOUT_S:.0f} s ({last}):\n{tail(self.log(name))}"
        )

    def start(self) -> None:
        """Write the credentials, start etcd and kube-apiserver, install KubeRay's CRDs."""
        (self.workdir / "certs").mkdir(parents=True, exist_ok=True)
        write_signing_key(self.workdir)
        (self.workdir / "tokens.csv").write_text(
            f'{self.admin_token},admin,admin-uid,"system:masters"\n'
            f"{self.nobody_token},nobody,nobody-uid\n"
        )
        self.write_kubeconfig(self.kubeconfig, self.admin_token, "admin")
        self.start_etcd()
        self.start_apiserver()
        install_crds(self)

    def stop(self) -> None:
        """Stop every process started here, the API server first, by PID."""
        for name in list(reversed(self.processes)):
            stop_process(self.processes.pop(name))

    # -- clients --------------------------------------------------------------------------

    def write_kubeconfig(self, path: Path, token: str, user: str) -> Path:
        """A kubeconfig at `path` that authenticates with `token`."""
        path.write_text(yaml.safe_dump(kubeconfig_doc(self.url, self.ca_file, token, user)))
        return path

    def client(self, token: str | None = None, user: str = "admin") -> k8s.ApiClient:
        """An ApiClient through a kubeconfig, as the daemon builds it; the admin's by default."""
        if token is None:
            return api_client(str(self.kubeconfig))
        path = self.workdir / f"{user}.kubeconfig"
        return api_client(str(self.write_kubeconfig(path, token, user)))

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this API server (as the admin unless told otherwise)."""
        if shutil.which("kubectl") is None:
            raise MissingBinariesError(
                "kubectl is not installed: run scripts/ensure-kubectl.sh (.ci/run does)"
            )
        return subprocess.run(
            ["kubectl", f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )


def install_crds(plane: ControlPlane) -> None:
    """Create KubeRay's CRDs from ../shared/peers/kuberay/crds and wait until they serve."""
    api = plane.client()
    try:
        extensions = k8s.ApiextensionsV1Api(api)
        names = []
        for path in sorted(CRDS.glob("*.yaml")):
            doc = yaml.safe_load(path.read_text())
            # The schemas are about 1 MB each: the answer is not parsed into models.
            extensions.create_custom_resource_definition(doc, _preload_content=False)
            names.append(doc["metadata"]["name"])
        for name in names:
            wait_established(extensions, name)
    finally:
        api.close()


def wait_established(extensions: k8s.ApiextensionsV1Api, name: str, timeout_s: float = 60) -> None:
    """Wait until the CRD `name` reports Established."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = extensions.read_custom_resource_definition(name, _preload_content=False)
        conditions = json.loads(answer.data).get("status", {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise RuntimeError(f"CRD {name} not established within {timeout_s:.0f} s")


def ensure_namespace(api: k8s.ApiClient, name: str) -> None:
    """Create namespace `name` and its `default` ServiceAccount unless they exist.

    No controller manager runs, so nothing else creates the ServiceAccount that pods
    are admitted with.
    """
    core = k8s.CoreV1Api(api)
    try:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    except k8s.ApiException as err:
        if err.status != 409:
            raise
    try:
        core.create_namespaced_service_account(
            name, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="default"))
        )
    except k8s.ApiException as err:
        if err.status != 409:
            raise


def empty_namespace(api: k8s.ApiClient, name: str) -> None:
    """Delete what tests create in namespace `name` (a namespace itself is never deleted:
    without a controller manager it would stay Terminating)."""
    custom = k8s.CustomObjectsApi(api)
    for plural in ("rayservices", "rayclusters"):
        custom.delete_collection_namespaced_custom_object("ray.io", "v1", name, plural)
    core = k8s.CoreV1Api(api)
    core.delete_collection_namespaced_config_map(name)
    core.delete_collection_namespaced_pod(name)
    for service in core.list_namespaced_service(name).items:
        core.delete_namespaced_service(service.metadata.name, name)
    core.delete_collection_namespaced_service_account(name, field_selector="metadata.name!=default")
    k8s.CoordinationV1Api(api).delete_collection_namespaced_lease(name)
    rbac = k8s.RbacAuthorizationV1Api(api)
    rbac.delete_collection_namespaced_role(name)
    rbac.delete_collection_namespaced_role_binding(name)
    k8s.AppsV1Api(api).delete_collection_namespaced_deployment(name)


def seed_rayservice(api: k8s.ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    """Create a RayService, then write its status through the status subresource."""
    custom = k8s.CustomObjectsApi(api)
    meta = obj["metadata"]
    body = {k: v for k, v in obj.items() if k != "status"}
    body["metadata"] = {k: v for k, v in meta.items() if k != "generation"}
    created = custom.create_namespaced_custom_object(
        "ray.io", "v1", meta["namespace"], "rayservices", body
    )
    if "status" not in obj:
        return dict(created)
    return set_rayservice_status(api, meta["namespace"], meta["name"], obj["status"])


def set_rayservice_status(
    api: k8s.ApiClient, namespace: str, name: str, status: dict[str, Any]
) -> dict[str, Any]:
    """Replace a RayService's status as KubeRay does: a PUT of the status subresource
    (a merge patch would keep fields the new status leaves out)."""
    custom = k8s.CustomObjectsApi(api)
    obj = custom.get_namespaced_custom_object("ray.io", "v1", namespace, "rayservices", name)
    obj["status"] = status
    replaced = custom.replace_namespaced_custom_object_status(
        "ray.io", "v1", namespace, "rayservices", name, obj
    )
    return dict(replaced)


class PatchStatuses:
    """The HTTP status of every patch sent through `send`: 200, or the one it was refused with."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self._lock = threading.Lock()

    def send(self, patch: Any, *args: Any, **kwargs: Any) -> Any:
        """Call `patch` and record how the server answered it."""
        from kubernetes.client import ApiException

        try:
            answer = patch(*args, **kwargs)
        except ApiException as err:
            with self._lock:
                self.statuses.append(int(err.status))
            raise
        with self._lock:
            self.statuses.append(200)
        return answer
