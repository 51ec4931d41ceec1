"""A stand-in Kubernetes API server: only the endpoints the Governor uses, over real HTTP.

RayServices (`ray.io/v1`): get, status get, list (with an equality label selector),
watch, JSON merge patch with resourceVersion preconditions (409 on a stale version).
ConfigMaps (`v1`): get, create, JSON merge patch with resourceVersion preconditions.
Leases (`coordination.k8s.io/v1`): create, get, replace with resourceVersion
preconditions and the API server's MicroTime format check. Writes are refused as the
real server refuses them: annotations over 256 KiB, ConfigMap data over 1 MiB, objects
over etcd's 1.5 MiB. Faults (a status, a delay, or both) are injected per method and
path for a number of requests.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

RS_PATH = re.compile(
    r"^/apis/ray\.io/v1/namespaces/(?P<ns>[^/]+)/rayservices(?:/(?P<name>[^/]+))?(?P<status>/status)?$"
)
CM_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/configmaps(?:/(?P<name>[^/]+))?$")
LEASE_PATH = re.compile(
    r"^/apis/coordination\.k8s\.io/v1/namespaces/(?P<ns>[^/]+)/leases(?:/(?P<name>[^/]+))?$"
)
# metav1.MicroTime: RFC 3339 with exactly six fractional digits.
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")

MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_CONFIGMAP_DATA_BYTES = 1024 * 1024
MAX_OBJECT_BYTES = 1536 * 1024
"""etcd's default request limit, which bounds every stored object."""

REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


@dataclass
class Fault:
    """Answer `status` (after `delay_s`) to the next `times` requests matching method and path.

    `then` runs first, as if another client wrote to the server just before this request.
    """

    method: str
    path: str
    status: int | None = None
    delay_s: float = 0.0
    times: int = 1
    message: str | None = None
    then: Callable[[], object] | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        return self.times > 0 and method == self.method and re.search(self.path, path) is not None


@dataclass
class Request:
    """One request as the stand-in saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    """Header names in lower case."""
    status: int = 0
    size: int = 0
    """Bytes of the request body as sent."""


@dataclass
class _Store:
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[int, str, tuple[str, str, str], dict[str, Any]]] = field(
        default_factory=list
    )
    rv: int = 100


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def status_body(code: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """A metav1.Status failure document."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "Unknown"),
        "code": code,
    }


class FakeApiServer:
    """Serve the stand-in on 127.0.0.1 at a free port; use as a context manager."""

    def __init__(self) -> None:
        self.store = _Store()
        self.lock = threading.Condition()
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.identity = "system:serviceaccount:test:governor"
        self.rbac: list[dict[str, Any]] | None = None
        """Role rules to enforce (403 for anything they do not allow); None allows all."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeApiServer:
        """Start serving in a background thread."""
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            with self.lock:
                self.lock.notify_all()
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers ----------------------------------------------------------------------

    def add_fault(self, method: str, path: str, **kwargs: Any) -> Fault:
        """Inject a fault for requests with `method` whose path matches the regex `path`."""
        fault = Fault(method, path, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def seed(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object directly (RayService or Lease), status included."""
        kind = obj["kind"]
        resource = {"RayService": "rayservices", "Lease": "leases", "ConfigMap": "configmaps"}[kind]
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        with self.lock:
            key = (resource, meta["namespace"], meta["name"])
            return self._write(key, copy.deepcopy(obj), "ADDED")

    def set_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Replace a RayService's status, as the KubeRay operator would."""
        with self.lock:
            key = ("rayservices", namespace, name)
            obj = copy.deepcopy(self.store.objects[key])
            obj["status"] = status
            return self._write(key, obj, "MODIFIED")

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        """A copy of a stored object."""
        with self.lock:
            return copy.deepcopy(self.store.objects[(resource, namespace, name)])

    def sent(self, method: str, path: str) -> list[Request]:
        """The requests with `method` whose path matches `path`, in order."""
        with self.lock:
            return [r for r in self.requests if r.method == method and re.search(path, r.path)]

    def count(self, method: str, path: str, status: int | None = None) -> int:
        """How many requests with `method` whose path matches `path` (and answered `status`)."""
        with self.lock:
            return sum(
                1
                for r in self.requests
                if r.method == method
                and re.search(path, r.path)
                and (status is None or r.status == status)
            )

    # -- internals -------------------------------------------------------------------------

    def _write(self, key: tuple[str, str, str], obj: dict[str, Any], event: str) -> dict[str, Any]:
        self.store.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.store.rv)
        self.store.objects[key] = obj
        self.store.events.append((self.store.rv, event, key, copy.deepcopy(obj)))
        self.lock.notify_all()
        return copy.deepcopy(obj)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.matches(method, path):
                    f.times -= 1
                    return f
        return None


def _make_handler(server: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            return

        # -- plumbing ----------------------------------------------------------------------

        def _send(self, code: int, body: dict[str, Any], record: Request) -> None:
            record.status = code
            data = json.dumps(body).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _fail(self, code: int, message: str, record: Request) -> None:
            self._send(code, status_body(code, message), record)

        def _handle(self, method: str) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            record = Request(
                method,
                parsed.path,
                parse_qs(parsed.query),
                body,
                {k.lower(): v for k, v in self.headers.items()},
                size=len(raw),
            )
            with server.lock:
                server.requests.append(record)
            denied = _rbac_denial(server.rbac, method, parsed.path, record)
            if denied is not None:
                self._fail(403, f'User "{server.identity}" cannot {denied}', record)
                return
            fault = server._take_fault(method, parsed.path)
            if fault is not None:
                if fault.then is not None:
                    fault.then()
                if fault.delay_s:
                    time.sleep(fault.delay_s)
                if fault.status is not None:
                    message = fault.message or f"injected fault {fault.status}"
                    if fault.status == 403 and fault.message is None:
                        message = f'User "{server.identity}" cannot {method.lower()} this resource'
                    self._fail(fault.status, message, record)
                    return
            m = RS_PATH.match(parsed.path)
            if m:
                self._rayservices(method, m, record)
                return
            m = LEASE_PATH.match(parsed.path)
            if m:
                self._leases(method, m, record)
                return
            m = CM_PATH.match(parsed.path)
            if m:
                self._configmaps(method, m, record)
                return
            self._fail(404, f"the stand-in does not serve {parsed.path}", record)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_POST(self) -> None:
            self._handle("POST")

        def _get_or_missing(
            self, key: tuple[str, str, str], what: str, method: str, record: Request
        ) -> bool:
            """Answer a GET, or a 404 for a missing object; False when the caller goes on."""
            with server.lock:
                current = copy.deepcopy(server.store.objects.get(key))
            if current is None:
                self._fail(404, f'{what} "{key[2]}" not found', record)
                return True
            if method == "GET":
                self._send(200, current, record)
                return True
            return False

        # -- RayServices -------------------------------------------------------------------

        def _rayservices(self, method: str, m: re.Match[str], record: Request) -> None:
            ns, name = m["ns"], m["name"]
            if name is None:
                if method != "GET":
                    self._fail(405, "method not allowed", record)
                elif record.query.get("watch", ["false"])[0] == "true":
                    self._watch(ns, record)
                else:
                    self._list(ns, record)
                return
            key = ("rayservices", ns, name)
            if self._get_or_missing(key, "rayservices.ray.io", method, record):
                return
            if method != "PATCH" or m["status"]:
                self._fail(405, "method not allowed", record)
                return
            if self.headers.get("Content-Type") != "application/merge-patch+json":
                self._fail(
                    415, f"unsupported patch type {self.headers.get('Content-Type')}", record
                )
                return
            if not isinstance(record.body, dict):
                self._fail(400, "a merge patch must be an object", record)
                return
            with server.lock:
                current = server.store.objects[key]
                wanted = (record.body.get("metadata") or {}).get("resourceVersion")
                if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                    self._fail(
                        409,
                        f'Operation cannot be fulfilled on rayservices.ray.io "{name}": the '
                        "object has been modified; please apply your changes to the latest "
                        "version and try again",
                        record,
                    )
                    return
                patch = {k: v for k, v in record.body.items() if k != "status"}
                updated = merge_patch(current, patch)
                updated["metadata"]["name"] = name
                updated["metadata"]["namespace"] = ns
                if "status" in current:
                    updated["status"] = current["status"]
                problem = _size_problem("rayservices.ray.io", name, updated)
                if problem is not None:
                    self._fail(*problem, record)
                    return
                if updated.get("spec") != current.get("spec"):
                    updated["metadata"]["generation"] = (
                        int(current["metadata"].get("generation", 1)) + 1
                    )
                written = server._write(key, updated, "MODIFIED")
            self._send(200, written, record)

        def _matching(self, ns: str, record: Request) -> list[dict[str, Any]]:
            selector = record.query.get("fieldSelector", [""])[0]
            wanted = selector.split("=", 1)[1] if selector.startswith("metadata.name=") else None
            labels = _equality_selector(record.query.get("labelSelector", [""])[0])
            with server.lock:
                return [
                    copy.deepcopy(o)
                    for (res, o_ns, o_name), o in sorted(server.store.objects.items())
                    if res == "rayservices"
                    and o_ns == ns
                    and wanted in (None, o_name)
                    and labels.items() <= (o["metadata"].get("labels") or {}).items()
                ]

        def _list(self, ns: str, record: Request) -> None:
            items = self._matching(ns, record)
            with server.lock:
                rv = str(server.store.rv)
            self._send(
                200,
                {
                    "apiVersion": "ray.io/v1",
                    "kind": "RayServiceList",
                    "metadata": {"resourceVersion": rv},
                    "items": items,
                },
                record,
            )

        def _watch(self, ns: str, record: Request) -> None:
            record.status = 200
            timeout = float(record.query.get("timeoutSeconds", ["30"])[0])
            since = record.query.get("resourceVersion", [None])[0]
            selector = record.query.get("fieldSelector", [""])[0]
            wanted = selector.split("=", 1)[1] if selector.startswith("metadata.name=") else None
            try:
                # Events go out as HTTP/1.1 chunks, as the API server sends them.
                self.protocol_version = "HTTP/1.1"
                self.close_connection = True
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                with server.lock:
                    cursor = server.store.rv
                if since is None:
                    for obj in self._matching(ns, record):
                        self._event("ADDED", obj)
                else:
                    cursor = int(since)
                deadline = time.monotonic() + timeout
                while True:
                    with server.lock:
                        pending = [e for e in server.store.events if e[0] > cursor]
                        if not pending:
                            left = deadline - time.monotonic()
                            if left <= 0:
                                self.wfile.write(b"0\r\n\r\n")
                                return
                            server.lock.wait(min(left, 0.1))
                            continue
                    for rv, kind, (res, o_ns, o_name), obj in pending:
                        cursor = rv
                        if res == "rayservices" and o_ns == ns and wanted in (None, o_name):
                            self._event(kind, obj)
            except (BrokenPipeError, ConnectionResetError):
                return

        def _event(self, kind: str, obj: dict[str, Any]) -> None:
            line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        # -- ConfigMaps --------------------------------------------------------------------

        def _configmaps(self, method: str, m: re.Match[str], record: Request) -> None:
            ns, name = m["ns"], m["name"]
            body = record.body
            if name is None:
                if method != "POST" or not isinstance(body, dict):
                    self._fail(405, "method not allowed", record)
                    return
                name = (body.get("metadata") or {}).get("name")
                key = ("configmaps", ns, name)
                obj = copy.deepcopy(body)
                obj["metadata"]["namespace"] = ns
                problem = _size_problem("configmaps", name, obj)
                with server.lock:
                    if key in server.store.objects:
                        self._fail(409, f'configmaps "{name}" already exists', record)
                        return
                    if problem is not None:
                        self._fail(*problem, record)
                        return
                    written = server._write(key, obj, "ADDED")
                self._send(201, written, record)
                return
            key = ("configmaps", ns, name)
            if self._get_or_missing(key, "configmaps", method, record):
                return
            if method != "PATCH":
                self._fail(405, "method not allowed", record)
                return
            if self.headers.get("Content-Type") != "application/merge-patch+json":
                self._fail(
                    415, f"unsupported patch type {self.headers.get('Content-Type')}", record
                )
                return
            with server.lock:
                current = server.store.objects[key]
                wanted = ((body or {}).get("metadata") or {}).get("resourceVersion")
                if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                    self._fail(
                        409,
                        f'Operation cannot be fulfilled on configmaps "{name}": the object has '
                        "been modified; please apply your changes to the latest version and "
                        "try again",
                        record,
                    )
                    return
                updated = merge_patch(current, body)
                updated["metadata"]["name"] = name
                updated["metadata"]["namespace"] = ns
                problem = _size_problem("configmaps", name, updated)
                if problem is not None:
                    self._fail(*problem, record)
                    return
                written = server._write(key, updated, "MODIFIED")
            self._send(200, written, record)

        # -- Leases ------------------------------------------------------------------------

        def _leases(self, method: str, m: re.Match[str], record: Request) -> None:
            ns, name = m["ns"], m["name"]
            body = record.body
            if method in ("POST", "PUT"):
                problem = _lease_problem(body)
                if problem:
                    self._fail(400, problem, record)
                    return
            if name is None:
                if method != "POST":
                    self._fail(405, "method not allowed", record)
                    return
                name = body["metadata"]["name"]
                key = ("leases", ns, name)
                with server.lock:
                    if key in server.store.objects:
                        self._fail(
                            409, f'leases.coordination.k8s.io "{name}" already exists', record
                        )
                        return
                    obj = copy.deepcopy(body)
                    obj["metadata"]["namespace"] = ns
                    obj.setdefault("apiVersion", "coordination.k8s.io/v1")
                    obj.setdefault("kind", "Lease")
                    written = server._write(key, obj, "ADDED")
                self._send(201, written, record)
                return
            key = ("leases", ns, name)
            if self._get_or_missing(key, "leases.coordination.k8s.io", method, record):
                return
            with server.lock:
                current = server.store.objects[key]
                if method != "PUT":
                    self._fail(405, "method not allowed", record)
                    return
                wanted = (body.get("metadata") or {}).get("resourceVersion")
                if wanted and wanted != current["metadata"]["resourceVersion"]:
                    self._fail(
                        409,
                        f'Operation cannot be fulfilled on leases.coordination.k8s.io "{name}": '
                        "the object has been modified",
                        record,
                    )
                    return
                obj = copy.deepcopy(body)
                obj["metadata"]["namespace"] = ns
                obj["metadata"]["name"] = name
                written = server._write(key, obj, "MODIFIED")
            self._send(200, written, record)

    return Handler


def _lease_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
        return "a Lease needs metadata"
    if not body["metadata"].get("name"):
        return "metadata.name: Required value"
    spec = body.get("spec") or {}
    for key in ("acquireTime", "renewTime"):
        value = spec.get(key)
        if value is not None and not MICRO_TIME.match(str(value)):
            return f"spec.{key}: {value!r} is not a MicroTime (RFC 3339 with 6 fractional digits)"
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration < 1):
        return "spec.leaseDurationSeconds: must be a positive integer"
    return None


def _equality_selector(selector: str) -> dict[str, str]:
    """`k=v,k2=v2` as a mapping (the only selectors the stand-in understands)."""
    out = {}
    for part in filter(None, (p.strip() for p in selector.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.endswith("!"):
            raise ValueError(f"the stand-in understands only k=v selectors, got {selector!r}")
        out[key] = value.lstrip("=")
    return out


def _size_problem(resource: str, name: str, obj: dict[str, Any]) -> tuple[int, str] | None:
    """The status and message the API server (or etcd) would refuse `obj` with, if any."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        return 422, (
            f'{resource} "{name}" is invalid: metadata.annotations: Too long: may not be '
            f"more than {MAX_ANNOTATIONS_BYTES} bytes"
        )
    if resource == "configmaps":
        # The API server counts the values only (keys are bounded by their own rule).
        data = obj.get("data") or {}
        size = sum(len(str(v).encode()) for v in data.values())
        if size > MAX_CONFIGMAP_DATA_BYTES:
            return 422, (
                f'ConfigMap "{name}" is invalid: []: Too long: may not be more than '
                f"{MAX_CONFIGMAP_DATA_BYTES} bytes"
            )
    if len(json.dumps(obj).encode()) > MAX_OBJECT_BYTES:
        return 500, "etcdserver: request is too large"
    return None


def request_attributes(
    method: str, path: str, query: dict[str, list[str]], body: Any
) -> tuple[str, str, str, str | None] | None:
    """(verb, apiGroup, resource, name) of a request, as the API server's RBAC sees it."""
    for pattern, group, resource in (
        (RS_PATH, "ray.io", "rayservices"),
        (LEASE_PATH, "coordination.k8s.io", "leases"),
        (CM_PATH, "", "configmaps"),
    ):
        m = pattern.match(path)
        if not m:
            continue
        name = m["name"]
        if pattern is RS_PATH and m["status"]:
            resource += "/status"
        if method == "GET":
            if name is not None:
                verb = "get"
            elif query.get("watch", ["false"])[0] == "true":
                verb = "watch"
            else:
                verb = "list"
        else:
            verb = {"PATCH": "patch", "PUT": "update", "POST": "create", "DELETE": "delete"}[method]
        if verb == "create":
            name = None  # RBAC cannot know the name of an object not yet created
        return verb, group, resource, name
    return None


def _rbac_denial(
    rules: list[dict[str, Any]] | None, method: str, path: str, record: Request
) -> str | None:
    if rules is None:
        return None
    attrs = request_attributes(method, path, record.query, record.body)
    if attrs is None:
        return None
    verb, group, resource, name = attrs
    for rule in rules:
        if (
            group in rule.get("apiGroups", [])
            and resource in rule.get("resources", [])
            and verb in rule.get("verbs", [])
            and (not rule.get("resourceNames") or name in rule["resourceNames"])
        ):
            return None
    return f'{verb} resource "{resource}" in API group "{group}"'
