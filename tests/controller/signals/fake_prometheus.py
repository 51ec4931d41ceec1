"""A stand-in for Prometheus's query API behind httpx.MockTransport, answering like the real one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx

from controller.signals.promql import QuerySet

Answer = list[tuple[dict[str, str], float]]


class FakePrometheus:
    """Answers each known query with set series; a query can be made to fail in a chosen way.

    `fail[name]` is one of: timeout, refused, 500, non-json, bad-data, matrix, malformed.
    """

    def __init__(self, queries: QuerySet, now: Callable[[], float]) -> None:
        self.by_expr = {q.expr: q.name for q in queries.all()}
        self.now = now
        self.answers: dict[str, Answer] = {}
        self.fail: dict[str, str] = {}
        self.eval_age_s: dict[str, float] = {}
        self.asked: list[str] = []

    def transport(self) -> httpx.MockTransport:
        """The transport a client under test sends through."""
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/query", request.url.path
        form = parse_qs(request.content.decode())
        expr = form["query"][0]
        assert "timeout" in form
        name = self.by_expr[expr]
        self.asked.append(name)
        mode = self.fail.get(name) or self.fail.get("*")
        if mode == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if mode == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if mode == "500":
            return httpx.Response(500, text="internal server error")
        if mode == "non-json":
            return httpx.Response(200, text="<html>proxy login</html>")
        if mode == "bad-data":
            return _json(400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
        if mode == "matrix":
            return _json(200, {"status": "success", "data": {"resultType": "matrix", "result": []}})
        if mode == "malformed":
            bad = [{"metric": {}, "value": ["x"]}]
            return _json(
                200, {"status": "success", "data": {"resultType": "vector", "result": bad}}
            )
        at = self.now() - self.eval_age_s.get(name, 0.0)
        result = [
            {"metric": labels, "value": [at, _text(value)]}
            for labels, value in self.answers.get(name, [])
        ]
        return _json(200, {"status": "success", "data": {"resultType": "vector", "result": result}})


def _text(value: float) -> str:
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "+Inf"
    return repr(float(value))


def _json(code: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        code, content=json.dumps(body), headers={"content-type": "application/json"}
    )


def healthy_answers(app: str, now_s: float, per_version: bool = False) -> dict[str, Answer]:
    """A fleet where v1 serves 10 req/s (1 error/s) with p95 about 180 ms and v2 serves nothing.

    v1's requests read 12 prompt tokens and write 3 tokens each: 120 and 30 tokens per second.
    With `per_version`, each version's deployment is in its application `<app>-<version>`.
    """
    v1 = {"application": app, "version": "v1"}
    dep1 = {"application": f"{app}-v1" if per_version else app, "deployment": "model_v1"}
    dep2 = {"application": f"{app}-v2" if per_version else app, "deployment": "model_v2"}
    buckets = [("50", 120.0), ("100", 360.0), ("200", 580.0), ("+Inf", 600.0)]
    return {
        "freshness": [({"application": app}, now_s - 2)],
        "request_rate": [(v1, 10.0)],
        "error_rate": [(v1, 1.0)],
        "latency_p50": [(v1, 75.0), ({"application": app, "version": "v2"}, float("nan"))],
        "latency_p95": [(v1, 180.0)],
        "latency_p99": [(v1, 196.0)],
        "latency_buckets": [({**v1, "le": le}, c) for le, c in buckets],
        "queue": [(dep1, 3.0), (dep2, 0.0)],
        "batch_size": [(dep1, 4.0)],
        "prompt_token_rate": [(dep1, 120.0)],
        "output_token_rate": [(dep1, 30.0)],
        "replicas": [(dep1, 2.0), (dep2, 0.0)],
        "weights": [(v1, 100.0), ({"application": app, "version": "v2"}, 0.0)],
    }
