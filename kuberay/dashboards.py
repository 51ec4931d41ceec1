"""One dashboard client per RayService: each shard's head service has its own Serve API."""

from __future__ import annotations

import httpx

from controller.transports.ray_dashboard import RayDashboardClient

PLACEHOLDER = "{rayservice}"


class Dashboards:
    """Dashboard clients by RayService name, made from a URL with `{rayservice}` in it."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.transport = transport
        self.token = token
        self._clients: dict[str, RayDashboardClient] = {}

    def url_for(self, rayservice: str) -> str:
        """The dashboard URL of one RayService's head service."""
        return self.url.replace(PLACEHOLDER, rayservice)

    def for_shard(self, rayservice: str) -> RayDashboardClient:
        """The (cached) client for one RayService's dashboard."""
        client = self._clients.get(rayservice)
        if client is None:
            client = RayDashboardClient(
                self.url_for(rayservice), self.timeout_s, transport=self.transport, token=self.token
            )
            self._clients[rayservice] = client
        return client

    def close(self) -> None:
        """Release every client's connections."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
