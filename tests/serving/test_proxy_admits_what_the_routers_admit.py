"""Serve's proxy refuses, before a hop to a router, what the application's routers say
they would not admit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from serving.proxy_admission import (
    ADMITS_HEADER,
    APPLICATION_HEADER,
    MODEL_HEADER,
    PREFIX_HEADER,
    ROUTER_HEADER,
    ROUTER_SILENT_S,
    WEIGHTS_HEADER,
    ProxyAdmission,
)
from serving.proxy_errors import OpenAIProxyErrors, middlewares
from serving.router import ROUTER_PID_HEADER

ADMITS = 4


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def router_headers(
    prefix: str = "/", admits: str = str(ADMITS), pid: str = "101", weights: str = "v1=100,v2=0"
) -> list[tuple[bytes, bytes]]:
    """The headers a router with admission puts on every answer."""
    return [
        (ADMITS_HEADER.encode(), admits.encode()),
        (ROUTER_HEADER.encode(), pid.encode()),
        (PREFIX_HEADER.encode(), prefix.encode()),
        (APPLICATION_HEADER.encode(), b"embeddings"),
        (MODEL_HEADER.encode(), b"minilm"),
        (WEIGHTS_HEADER.encode(), weights.encode()),
    ]


class Router:
    """Stands in for the proxy's forwarding: answers once `release` is set, with headers."""

    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None, status: int = 200):
        self.headers = router_headers() if headers is None else headers
        self.status = status
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})


class Shed:
    """Counts refusals as the proxy's metric would."""

    def __init__(self) -> None:
        self.counted: list[tuple[str, str, str]] = []

    def __call__(self, application: str, model: str, version: str) -> None:
        self.counted.append((application, model, version))


async def call(app: Any, path: str = "/v1/embeddings", method: str = "POST") -> dict[str, Any]:
    """One request through `app`: its status, headers and body."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    headers = {bytes(k).decode(): bytes(v).decode() for k, v in start["headers"]}
    return {"status": start["status"], "headers": headers, "body": body}


def make(router: Router, clock: Clock | None = None) -> tuple[ProxyAdmission, Shed]:
    shed = Shed()
    return ProxyAdmission(router, count_shed=shed, clock=clock or Clock()), shed


async def hold(admission: ProxyAdmission, router: Router, n: int) -> list[asyncio.Task[Any]]:
    """`n` requests passed on and held at the router."""
    router.release.clear()
    tasks = [asyncio.create_task(call(admission)) for _ in range(n)]
    await asyncio.sleep(0)
    return tasks


def test_an_application_not_yet_heard_from_is_not_limited() -> None:
    async def scenario() -> None:
        router = Router(headers=[])
        admission, shed = make(router)
        tasks = await hold(admission, router, 10 * ADMITS)
        router.release.set()
        assert {a["status"] for a in await asyncio.gather(*tasks)} == {200}
        assert shed.counted == [] and admission.routes == {}

    asyncio.run(scenario())


def test_beyond_what_the_routers_admit_the_proxy_answers_503_without_a_hop() -> None:
    async def scenario() -> None:
        router = Router()
        admission, shed = make(router)
        await call(admission)  # learns the route from the answer's headers
        tasks = await hold(admission, router, ADMITS)
        calls = router.calls
        refused = await call(admission)
        assert router.calls == calls, "the refused request never reached the router"
        assert refused["status"] == 503
        assert refused["headers"]["retry-after"] == "1"
        error = json.loads(refused["body"])["error"]
        assert error["code"] == "overloaded" and error["type"] == "server_error"
        assert f"{ADMITS} requests in flight to /, {ADMITS} admitted" in error["message"]
        assert shed.counted == [("embeddings", "minilm", "v1")], "drawn by the weights 100/0"
        router.release.set()
        assert {a["status"] for a in await asyncio.gather(*tasks)} == {200}
        assert admission.routes["/"].in_flight == 0
        assert (await call(admission))["status"] == 200

    asyncio.run(scenario())


def test_what_every_live_router_admits_is_added_up() -> None:
    async def scenario() -> None:
        clock = Clock()
        router = Router()
        admission, _ = make(router, clock)
        await call(admission)
        router.headers = router_headers(pid="202", admits="6")
        await call(admission)
        assert admission.routes["/"].limit(clock.now) == ADMITS + 6
        clock.now += ROUTER_SILENT_S / 2
        await call(admission)  # router 202 again
        clock.now += ROUTER_SILENT_S / 2 + 1
        assert admission.routes["/"].limit(clock.now) == 6, "router 101 went silent"

    asyncio.run(scenario())


def test_reads_and_health_checks_always_pass() -> None:
    async def scenario() -> None:
        router = Router()
        admission, _ = make(router)
        await call(admission)
        tasks = await hold(admission, router, ADMITS)
        router.release.set()
        for path in ("/health", "/v1/models"):
            assert (await call(admission, path, method="GET"))["status"] == 200
        await asyncio.gather(*tasks)

    asyncio.run(scenario())


def test_each_application_is_limited_by_the_longest_route_prefix_it_matches() -> None:
    async def scenario() -> None:
        router = Router()
        admission, _ = make(router)
        await call(admission)
        router.headers = router_headers(prefix="/gen", admits="9")
        await call(admission, "/gen/v1/completions")
        gen = admission.route_of("/gen/v1/completions")
        assert gen is not None and gen.prefix == "/gen" and gen.limit(0.0) == 9
        root = admission.route_of("/generate")
        assert root is not None and root.prefix == "/"

    asyncio.run(scenario())


def test_a_request_that_fails_behind_the_proxy_frees_its_place() -> None:
    async def scenario() -> None:
        router = Router()
        admission, _ = make(router)
        await call(admission)

        async def broken(scope: Any, receive: Any, send: Any) -> None:
            raise RuntimeError("router gone")

        admission.app = broken
        with pytest.raises(RuntimeError):
            await call(admission)
        assert admission.routes["/"].in_flight == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("admits", ["abc", "-5", "1.5", ""])
def test_headers_that_do_not_parse_teach_nothing(admits: str) -> None:
    async def scenario() -> None:
        router = Router(headers=router_headers(admits=admits))
        admission, _ = make(router)
        await call(admission)
        assert admission.routes == {}

    asyncio.run(scenario())


def test_admission_is_the_outermost_proxy_middleware() -> None:
    chain = [m.cls for m in middlewares()]
    assert chain == [OpenAIProxyErrors, ProxyAdmission], "Ray wraps in order: last is outermost"


def test_the_router_and_the_proxy_name_the_router_alike() -> None:
    assert ROUTER_PID_HEADER == ROUTER_HEADER
