"""Admission at Serve's HTTP proxy: refuse what an application's routers would refuse,
before the proxy spends a hop to a router on it.

A router's own admission (serving/admission.py) runs in its request handler: every
request it refuses has already cost the proxy and the router a round trip, and the
requests waiting in the router replica for its event loop are neither seen nor timed
there. Where the proxy and the routers share cores with the models, that cost is what
starves the models under overload. So each router reports, on every answer, how many
requests it admits now (`x-governor-admits`: the sum of the latency limits of the
versions its weights send traffic to), and the proxy keeps the requests it has in flight
to the application within the sum of what its routers admit. Beyond that it answers
503 `overloaded` with `Retry-After` itself: no hop, no router CPU, and no backlog in the
router that its limits do not count. A single slow version does not close the
application: the sum is large while any other version with traffic admits much.

The proxy learns each application's route prefix, name, model, weights and routers from
the headers of its answers, so nothing is configured twice, and admits everything to an
application it has not heard from (or whose routers set no latency target). Only POST
requests (inference) are admitted this way; `GET /health`, `/v1/models` and the like
always pass. A refusal is counted as
`governor_proxy_requests_shed_total{application, model, version}`, the version drawn by
the router's last weights as the router would have: the signal sources add it to that
version's shed requests, demand it did not get to serve.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from serving.metrics import NO_VERSION
from serving.routing import pick_weighted
from serving.spec import RETRY_AFTER_S

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

ADMITS_HEADER = "x-governor-admits"
ROUTER_HEADER = "x-governor-router-pid"
PREFIX_HEADER = "x-governor-route-prefix"
MODEL_HEADER = "x-governor-model"
APPLICATION_HEADER = "x-governor-application"
WEIGHTS_HEADER = "x-governor-weights"
ROUTER_SILENT_S = 10.0
"""A router that answered nothing for this long is gone (replaced, scaled in): its report
no longer counts. The proxy spreads requests over an application's routers, so a live
one answers within a second under any load that could need admission."""


class ShedCounter(Protocol):
    """Counts the requests the proxy refused."""

    def __call__(self, application: str, model: str, version: str) -> None:
        """Count one refusal of a request that `version` of `model` would have served."""


@dataclass
class Route:
    """One application as the proxy knows it from its routers' answers."""

    prefix: str
    application: str = ""
    model: str = ""
    weights: dict[str, int] = field(default_factory=dict)
    admits: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Per router process: what it last said it admits, and when."""
    in_flight: int = 0

    def limit(self, now: float) -> int | None:
        """What the routers heard from lately admit together; None when none reported."""
        live = [n for n, at in self.admits.values() if now - at <= ROUTER_SILENT_S]
        return sum(live) if live else None


class ProxyAdmission:
    """ASGI middleware for Serve's proxy: per application, admit what its routers admit."""

    def __init__(
        self,
        app: App,
        count_shed: ShedCounter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.count_shed = count_shed or _ray_shed_counter()
        self.clock = clock
        self.routes: dict[str, Route] = {}
        self.rng = random.Random()

    def route_of(self, path: str) -> Route | None:
        """The learned application whose route prefix is the longest match of `path`."""
        best: Route | None = None
        for prefix, route in self.routes.items():
            if _under(path, prefix) and (best is None or len(prefix) > len(best.prefix)):
                best = route
        return best

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Refuse at once beyond what the application's routers admit; else pass on."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        route = None
        if scope.get("method") == "POST":
            route = self.route_of(str(scope.get("path", "/")))
        if route is not None:
            limit = route.limit(self.clock())
            if limit is not None and route.in_flight >= limit:
                self.count_shed(route.application, route.model, self._version_for(route))
                await _send_overloaded(send, route, limit)
                return
            route.in_flight += 1
        done = False

        async def learning_send(message: Message) -> None:
            nonlocal done
            if message["type"] == "http.response.start":
                self._learn(_headers(message))
                if route is not None and not done:
                    done = True
                    route.in_flight -= 1
            await send(message)

        try:
            await self.app(scope, receive, learning_send)
        finally:
            if route is not None and not done:
                route.in_flight -= 1

    def _version_for(self, route: Route) -> str:
        """The version the router would have sent a refused request to."""
        try:
            return pick_weighted(route.weights, self.rng)
        except ValueError:
            return NO_VERSION

    def _learn(self, headers: dict[str, str]) -> None:
        prefix, admits, router = (
            headers.get(PREFIX_HEADER),
            headers.get(ADMITS_HEADER),
            headers.get(ROUTER_HEADER),
        )
        if prefix is None or router is None or admits is None or not admits.isdigit():
            return
        route = self.routes.get(prefix)
        if route is None:
            route = self.routes[prefix] = Route(prefix)
        route.application = headers.get(APPLICATION_HEADER, route.application)
        route.model = headers.get(MODEL_HEADER, route.model)
        route.weights = _weights(headers.get(WEIGHTS_HEADER, "")) or route.weights
        route.admits[router] = (int(admits), self.clock())


def _weights(text: str) -> dict[str, int]:
    """`v1=90,v2=10` as a dict; entries that do not parse are left out."""
    weights = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name and value.isdigit():
            weights[name] = int(value)
    return weights


def _under(path: str, prefix: str) -> bool:
    if prefix in ("", "/"):
        return True
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _headers(message: Message) -> dict[str, str]:
    return {
        bytes(name).decode("latin-1").lower(): bytes(value).decode("latin-1")
        for name, value in message.get("headers", [])
    }


async def _send_overloaded(send: Send, route: Route, limit: int) -> None:
    retry = str(math.ceil(RETRY_AFTER_S))
    body = json.dumps(
        {
            "error": {
                "message": f"the service is overloaded: {route.in_flight} requests in flight "
                f"to {route.prefix}, {limit} admitted by its routers; retry after {retry} s",
                "type": "server_error",
                "param": None,
                "code": "overloaded",
            }
        },
        separators=(",", ":"),
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", retry.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _ray_shed_counter() -> ShedCounter:
    """`governor_proxy_requests_shed_total{application, model, version}` of this process."""
    from ray.util.metrics import Counter

    counter = Counter(
        "governor_proxy_requests_shed",
        description="Requests Serve's proxy refused with 503 + Retry-After: the application "
        "already had in flight what its routers admit.",
        tag_keys=("application", "model", "version"),
    )

    def count(application: str, model: str, version: str) -> None:
        counter.inc(tags={"application": application, "model": model, "version": version})

    return count
