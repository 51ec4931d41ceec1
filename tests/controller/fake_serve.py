"""An in-memory stand-in for the Ray dashboard's Serve REST API, as an httpx transport."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx


class FakeServe:
    """Keeps applications the way Ray reports them; counts the writes it receives."""

    def __init__(self) -> None:
        self.apps: dict[str, dict[str, Any]] = {}
        self.puts: list[dict[str, Any]] = []
        self.scales: list[tuple[str, str, int]] = []
        self.fail_next: int | None = None
        self.restarted: list[str] = []
        """Applications whose code (import path, args, runtime env) a submission changed:
        Ray restarts every replica of those."""

    def transport(self) -> httpx.MockTransport:
        """An httpx transport that answers like the dashboard."""
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if self.fail_next is not None:
            code, self.fail_next = self.fail_next, None
            return httpx.Response(code, json={"message": "injected failure"})
        path = request.url.path
        if request.method == "GET" and path == "/api/serve/applications/":
            return httpx.Response(200, json={"applications": copy.deepcopy(self.apps)})
        if request.method == "PUT" and path == "/api/serve/applications/":
            doc = json.loads(request.content)
            self.puts.append(doc)
            self._deploy(doc)
            return httpx.Response(200)
        if request.method == "POST" and path.endswith("/scale"):
            parts = path.split("/")
            app, dep = parts[4], parts[6]
            n = json.loads(request.content)["target_num_replicas"]
            if app not in self.apps or dep not in self.apps[app]["deployments"]:
                return httpx.Response(404, json={"message": f"no deployment {app}/{dep}"})
            self.scales.append((app, dep, n))
            self._set_replicas(self.apps[app]["deployments"][dep], n)
            for entry in self.apps[app]["deployed_app_config"].get("deployments", []):
                if entry.get("name") == dep:
                    entry["num_replicas"] = n
            return httpx.Response(200)
        return httpx.Response(404, json={"message": f"no route {request.method} {path}"})

    def _deploy(self, doc: dict[str, Any]) -> None:
        submitted = {app["name"] for app in doc["applications"]}
        for name in [n for n in self.apps if n not in submitted]:
            del self.apps[name]  # the REST API is declarative: left out is deleted
        for app in doc["applications"]:
            before = (self.apps.get(app["name"]) or {}).get("deployed_app_config")
            code = ("import_path", "args", "runtime_env")
            new_code = before is not None and any(before.get(k) != app.get(k) for k in code)
            if new_code:
                self.restarted.append(app["name"])
            current = self.apps.get(app["name"], {"deployments": {}})
            deployments = current["deployments"]
            was = {d.get("name"): d for d in (before or {}).get("deployments", [])}
            for d in app.get("deployments", []):
                entry = deployments.setdefault(d["name"], {"name": d["name"], "replicas": []})
                # Ray redeploys (and so resets the count of) an entry that differs from the
                # one it holds, the count the scale API set included.
                if was.get(d["name"]) != d or new_code:
                    self._set_replicas(entry, d.get("num_replicas", 1))
            self.apps[app["name"]] = {
                "name": app["name"],
                "status": "RUNNING",
                "deployed_app_config": copy.deepcopy(app),
                "deployments": deployments,
            }

    @staticmethod
    def _set_replicas(entry: dict[str, Any], n: int) -> None:
        entry["target_num_replicas"] = n
        entry["replicas"] = [
            {"replica_id": f"{entry['name']}-{i}", "state": "RUNNING", "start_time_s": 1.0}
            for i in range(n)
        ]
