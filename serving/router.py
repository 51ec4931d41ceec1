"""The ingress: OpenAI-compatible HTTP in front of the version deployments.

Each request is validated, routed to one version (by the live weights, or pinned with
`<model>:<version>`), and answered with headers that say which version and which
replica process served it.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures, and
# Serve's ingress wrapper resolves string annotations against Ray's module, not this one.
import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
)
from ray.serve.handle import DeploymentHandle

from serving.errors import ApiError, InputRejectedError
from serving.http_body import read_json_object
from serving.live_config import LiveSetting
from serving.metrics import NO_VERSION, RouterMetrics
from serving.openai_api import (
    CompletionRequest,
    EmbeddingRequest,
    check_inputs,
    completions_body,
    embeddings_body,
    max_tokens_of,
    models_body,
    parse_request,
)
from serving.results import ServedBy
from serving.routing import pick_weighted, resolve_model
from serving.spec import AppArgs, parse_router_config

VERSION_HEADER = "x-governor-version"
REPLICA_PID_HEADER = "x-governor-replica-pid"
ROUTER_PID_HEADER = "x-governor-router-pid"

logger = logging.getLogger("ray.serve")

api = FastAPI(title="governor", docs_url=None, redoc_url=None, openapi_url=None)

_UNAVAILABLE = (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
    RayActorError,
)


@dataclass(frozen=True)
class _Call:
    """A validated request: which model it names, how to run it, how to render the result."""

    model: str
    invoke: Callable[[DeploymentHandle], Awaitable[Any]]
    render: Callable[[Any], dict[str, Any]]


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The OpenAI error body for an ApiError."""
    body = {
        "error": {
            "message": error.message,
            "type": error.kind,
            "param": error.param,
            "code": error.code,
        }
    }
    return JSONResponse(body, status_code=error.status, headers=headers)


@serve.deployment(max_ongoing_requests=256)
@serve.ingress(api)
class Router:
    """Routes OpenAI-style requests of one application to its version deployments."""

    def __init__(self, args: AppArgs, models: dict[str, DeploymentHandle]) -> None:
        self.args = args
        self.models = models
        self.metrics = RouterMetrics(args.model_name)
        self.weights: LiveSetting[dict[str, int]] = LiveSetting(
            "weights", self.metrics.config_rejected.inc
        )
        self.rng = random.Random()
        self.created = int(time.time())

    def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Adopt new traffic weights; invalid ones are refused and the old ones stay."""
        if user_config is None:
            user_config = {"weights": self.args.initial_weights()}
        versions = self.args.version_names
        if self.weights.update(lambda: parse_router_config(user_config, versions)):
            self.metrics.record_weights(self.weights.value)
            logger.info("traffic weights now %s", self.weights.value)

    @api.get("/health")
    async def health(self) -> dict[str, Any]:
        """Liveness plus what this router is doing: task, weights, last refused update."""
        return {
            "status": "ok",
            "task": self.args.task,
            "model": self.args.model_name,
            "versions": self.args.version_names,
            "weights": self.weights.value,
            "last_config_error": self.weights.last_error,
            "router_pid": os.getpid(),
        }

    @api.get("/versions")
    async def versions(self) -> dict[str, Any]:
        """Per version, what one of its replicas reports: process, batching in force."""
        names = self.args.version_names
        answers = await asyncio.gather(
            *(self.models[name].describe.remote() for name in names), return_exceptions=True
        )
        return {
            name: answer if isinstance(answer, dict) else {"error": repr(answer)}
            for name, answer in zip(names, answers, strict=True)
        }

    @api.get("/v1/models")
    async def list_models(self) -> dict[str, Any]:
        """The model ids this application answers to."""
        return models_body(self.args.model_name, self.args.version_names, self.created)

    @api.post("/v1/embeddings")
    async def embeddings(self, request: Request) -> JSONResponse:
        """OpenAI-compatible embeddings."""
        return await self._answer(request, "embeddings", self._embeddings_call)

    @api.post("/v1/completions")
    async def completions(self, request: Request) -> JSONResponse:
        """OpenAI-compatible text completions."""
        return await self._answer(request, "generation", self._completions_call)

    def _embeddings_call(self, body: dict[str, Any]) -> _Call:
        request = parse_request(EmbeddingRequest, body)
        texts = request.texts
        check_inputs(texts, "input", self.args)
        return _Call(
            model=request.model,
            invoke=lambda handle: handle.embed.remote(texts),
            render=lambda result: embeddings_body(result, request.model, request.encoding_format),
        )

    def _completions_call(self, body: dict[str, Any]) -> _Call:
        request = parse_request(CompletionRequest, body)
        prompts = request.prompts
        check_inputs(prompts, "prompt", self.args)
        max_tokens = max_tokens_of(request, self.args)
        return _Call(
            model=request.model,
            invoke=lambda handle: handle.complete.remote(
                prompts, max_tokens, request.temperature, request.top_p, request.stops
            ),
            render=lambda result: completions_body(result, request.model),
        )

    async def _answer(
        self, request: Request, task: str, prepare: Callable[[dict[str, Any]], _Call]
    ) -> JSONResponse:
        endpoint = request.url.path.rsplit("/", 1)[-1]
        started = time.perf_counter()
        version = NO_VERSION
        try:
            if task != self.args.task:
                raise ApiError(
                    404,
                    f"this application serves {self.args.task}, not {task}",
                    code="unsupported_endpoint",
                )
            call = prepare(await read_json_object(request, self.args.max_body_bytes))
            pinned = resolve_model(call.model, self.args.model_name, self.args.version_names)
            version = pinned or pick_weighted(self.weights.value, self.rng)
            result = await call.invoke(self.models[version])
            body = call.render(result)
        except Exception as exc:
            error = self._as_api_error(exc, version)
            self.metrics.record_error(version, endpoint, error.code, error.status)
            headers = {VERSION_HEADER: version} if version != NO_VERSION else None
            return error_response(error, headers)
        self.metrics.record_success(version, endpoint, (time.perf_counter() - started) * 1e3)
        return JSONResponse(body, headers=self._served_headers(result.served_by))

    def _served_headers(self, served_by: ServedBy) -> dict[str, str]:
        return {
            VERSION_HEADER: served_by.version,
            REPLICA_PID_HEADER: str(served_by.replica_pid),
            ROUTER_PID_HEADER: str(os.getpid()),
        }

    def _as_api_error(self, exc: Exception, version: str) -> ApiError:
        if isinstance(exc, ApiError):
            return exc
        if isinstance(exc, InputRejectedError):
            return ApiError(400, exc.message, param=exc.param)
        if isinstance(exc, _UNAVAILABLE):
            logger.warning("version %s unavailable: %r", version, exc)
            return ApiError(
                503,
                f"version {version} is unavailable or overloaded; retry later",
                code="unavailable",
                kind="server_error",
            )
        logger.exception("version %s failed", version)
        return ApiError(
            500,
            f"version {version} failed: {type(exc).__name__}",
            code="model_error",
            kind="server_error",
        )
