"""HTTP client of the Ray dashboard's Serve REST API; errors are typed where they enter."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from controller.errors import PermanentError, TemporaryError


def ray_auth_token() -> str | None:
    """The Ray dashboard token from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    if token:
        return token.strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _message(response: httpx.Response) -> str:
    text = response.text.strip()
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        return text[:500]
    if isinstance(body, dict):
        for key in ("message", "msg", "error", "detail"):
            if key in body:
                return str(body[key])[:500]
    return text[:500]


def raise_for_status(response: httpx.Response, what: str) -> None:
    """Translate an HTTP error status into TemporaryError or PermanentError."""
    code = response.status_code
    if code < 400:
        return
    detail = _message(response)
    if code == 401:
        raise PermanentError(
            f"{what}: the Ray dashboard requires a token (401); set RAY_AUTH_TOKEN or "
            f"RAY_AUTH_TOKEN_PATH, or create ~/.ray/auth_token: {detail}"
        )
    if code == 429 or code >= 500:
        raise TemporaryError(f"{what}: HTTP {code}: {detail}", retry_after_s=2.0)
    raise PermanentError(f"{what}: HTTP {code}: {detail}")


class RayDashboardClient:
    """Reads and writes Serve applications through the dashboard's REST API."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        headers = {}
        token = token if token is not None else ray_auth_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout_s, headers=headers, transport=transport
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as err:
            raise TemporaryError(f"{what}: timed out reaching {self.base_url}", 2.0) from err
        except httpx.TransportError as err:
            raise TemporaryError(f"{what}: cannot reach {self.base_url}: {err}", 2.0) from err
        raise_for_status(response, what)
        return response

    def get_applications(self) -> dict[str, Any]:
        """The Serve status document of `GET /api/serve/applications/`."""
        response = self._send("GET", "/api/serve/applications/", "read Serve applications")
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError) as err:
            raise TemporaryError("read Serve applications: the answer is not JSON", 2.0) from err
        if not isinstance(body, dict):
            raise TemporaryError("read Serve applications: unexpected answer shape", 2.0)
        return body

    def put_applications(self, serve_config: dict[str, Any]) -> None:
        """Submit the whole Serve config (`PUT /api/serve/applications/`)."""
        self._send("PUT", "/api/serve/applications/", "apply the Serve config", json=serve_config)

    def delete_applications(self) -> None:
        """Shut down every Serve application (`DELETE /api/serve/applications/`)."""
        self._send("DELETE", "/api/serve/applications/", "delete Serve applications")

    def scale(self, app: str, deployment: str, replicas: int) -> None:
        """Set a deployment's replicas through the external-scaler API (0 allowed)."""
        self._send(
            "POST",
            f"/api/v1/applications/{app}/deployments/{deployment}/scale",
            f"scale {app}/{deployment} to {replicas}",
            json={"target_num_replicas": replicas},
        )


def fetch_text(url: str, timeout_s: float, transport: httpx.BaseTransport | None = None) -> str:
    """GET a text document (a Prometheus exposition) with typed errors."""
    try:
        with httpx.Client(timeout=timeout_s, transport=transport) as client:
            response = client.get(url)
    except httpx.TimeoutException as err:
        raise TemporaryError(f"read {url}: timed out", 2.0) from err
    except httpx.TransportError as err:
        raise TemporaryError(f"read {url}: {err}", 2.0) from err
    raise_for_status(response, f"read {url}")
    return response.text
