"""The ingress: OpenAI-compatible HTTP in front of the version deployments.

Each request is validated, routed to one version (by the live weights, or pinned with
`<model>:<version>`), and answered with headers that say which version and which
replica process served it.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures, and
# Serve's ingress wrapper resolves string annotations against Ray's module, not this one.
import asyncio
import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    RayServeException,
    ReplicaUnavailableError,
)
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException

from serving.admission import Admission
from serving.errors import (
    AdmissionRefusedError,
    ApiError,
    InputRejectedError,
    QueueWaitExceededError,
)
from serving.http_body import BodyLimits, read_json_object
from serving.live_config import LiveSetting
from serving.metrics import NO_VERSION, RouterMetrics
from serving.openai_api import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    EMBEDDINGS_PATH,
    CompletionList,
    CompletionRequest,
    EmbeddingList,
    EmbeddingRequest,
    ModelList,
    check_inputs,
    completions_body,
    embeddings_body,
    error_responses,
    max_tokens_of,
    models_body,
    openapi_document,
    parse_request,
)
from serving.openai_chat import (
    DONE,
    SSE_CONTENT,
    ChatCompletion,
    ChatCompletionRequest,
    StreamFormat,
    chat_completion_body,
    stream_options_usage,
)
from serving.proxy_admission import (
    ADMITS_HEADER,
    APPLICATION_HEADER,
    MODEL_HEADER,
    PREFIX_HEADER,
    ROUTER_HEADER,
    WEIGHTS_HEADER,
)
from serving.results import ServedBy
from serving.routing import pick_weighted, resolve_model
from serving.spec import (
    RETRY_AFTER_S,
    ModelUserConfig,
    RouterArgs,
    RouterTable,
    deployment_name,
    parse_router_config,
)

VERSION_HEADER = "x-governor-version"
REPLICA_PID_HEADER = "x-governor-replica-pid"
ROUTER_PID_HEADER = ROUTER_HEADER

logger = logging.getLogger("ray.serve")

OPENAPI_PATH = "/openapi.json"
API_VERSION = "0.1.0"

# The OpenAPI document is served by the Router itself (OPENAPI_PATH), because each
# application's limits and model ids belong in it.
api = FastAPI(title="governor", docs_url=None, redoc_url=None, openapi_url=None)

OVERLOADED = "overloaded"
UNAVAILABLE = "unavailable"
RETRY_AFTER_HEADER = "retry-after"
DEFAULT_RETRY_AFTER_S = RETRY_AFTER_S
"""Retry-After when Serve's backpressure_config sets none (docs/reliability.md)."""

_SHED = (BackPressureError, QueueWaitExceededError, AdmissionRefusedError)
"""The version's queue at this router is full (its `max_queued_requests`), a request
waited in it past `max_queue_wait_ms` and was not computed, or the version already has
in flight what it answers within `latency_target_ms`."""
_UNAVAILABLE = (
    DeploymentUnavailableError,
    ReplicaUnavailableError,
    RayActorError,
)
"""The version has no replica that can take the request (failed, stopped or gone)."""


@dataclass(frozen=True)
class _Call:
    """A validated request: which model it names, how to run it, how to render the result."""

    model: str
    invoke: Callable[[DeploymentHandle, float | None], Awaitable[Any]]
    """Sends the request to a version's handle, with the wall time it must start by."""
    render: Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class _StreamedCall:
    """A validated stream=true request: its model, how to open the stream, how to write it."""

    model: str
    stream: Callable[[DeploymentHandle, float | None], Any]
    """Opens the version's stream of StreamChunk (a streaming handle's call)."""
    events: StreamFormat
    """How the chunks are written as server-sent events."""


class UnavailableError(ApiError):
    """A 503 in the OpenAI error format: the version cannot take the request now; retry later."""

    def __init__(self, message: str, code: str, retry_after_s: float) -> None:
        super().__init__(503, message, code=code, kind="server_error")
        self.retry_after_s = retry_after_s

    @property
    def shed(self) -> bool:
        """Whether the request was refused for overload, which is no failure of the version."""
        return self.code == OVERLOADED

    @property
    def retry_after(self) -> str:
        """The Retry-After value: whole seconds, rounded up so no retry comes too early."""
        return str(max(0, math.ceil(self.retry_after_s)))


def unavailable_error(exc: Exception, version: str) -> UnavailableError | None:
    """The 503 for a version that is overloaded or has no replica to serve; None otherwise."""
    if isinstance(exc, _SHED):
        # Not logged per request: under overload that is many lines a second, on the
        # cores that serve; the shed counter says it.
        given = getattr(exc, "retry_after_s", None)
        retry_s = given if given is not None else DEFAULT_RETRY_AFTER_S
        why = str(exc) if isinstance(exc, AdmissionRefusedError) else "its queue is full"
        return UnavailableError(
            f"version {version} is overloaded: {why}; retry after {max(0, math.ceil(retry_s))} s",
            OVERLOADED,
            retry_s,
        )
    if isinstance(exc, _UNAVAILABLE):
        logger.warning("version %s unavailable: %r", version, exc)
        return UnavailableError(
            f"version {version} has no replica available; retry later",
            UNAVAILABLE,
            DEFAULT_RETRY_AFTER_S,
        )
    return None


def error_headers(error: ApiError, version: str) -> dict[str, str] | None:
    """Headers of an error answer: the version it was routed to, Retry-After on a 503."""
    headers = {VERSION_HEADER: version} if version != NO_VERSION else {}
    if isinstance(error, UnavailableError):
        headers[RETRY_AFTER_HEADER] = error.retry_after
    return headers or None


def record_failure(metrics: RouterMetrics, version: str, endpoint: str, error: ApiError) -> None:
    """Count a request that got an error: shed for overload, or an error of `version`."""
    if isinstance(error, UnavailableError) and error.shed:
        metrics.record_shed(version, endpoint)
    else:
        metrics.record_error(version, endpoint, error.code, error.status)


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


def _application_name() -> str:
    """The Serve application this router belongs to ("" outside Serve)."""
    try:
        return serve.get_replica_context().app_name
    except RayServeException:
        return ""


def _first_takes_all(versions: list[str]) -> dict[str, int]:
    """Weights that send everything to the first version."""
    return {name: 100 if i == 0 else 0 for i, name in enumerate(versions)}


def _shown(text: str, limit: int = 200) -> str:
    """A client-sent text fit to quote in an error message: bounded and encodable."""
    clipped = text if len(text) <= limit else f"{text[:limit]}..."
    return clipped.encode("utf-8", "backslashreplace").decode("utf-8")


def http_error(request: Request, exc: HTTPException) -> ApiError:
    """The ApiError for an error Starlette raises itself: unknown route, wrong method."""
    method, path = request.method, _shown(request.url.path)
    if exc.status_code == 404:
        document = f"{request.scope.get('root_path') or ''}{OPENAPI_PATH}"
        return ApiError(404, f"no route {method} {path}; see {document}", code="unknown_route")
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return ApiError(
            405,
            f"{method} is not allowed on {path}; allowed: {allowed}",
            code="method_not_allowed",
        )
    kind = "server_error" if exc.status_code >= 500 else "invalid_request_error"
    return ApiError(exc.status_code, str(exc.detail), code="http_error", kind=kind)


# Registered before @serve.ingress below, which takes a copy of `api` as it is then.
@api.exception_handler(HTTPException)
async def _starlette_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's 404 and 405 (and any HTTPException) in the OpenAI error format."""
    return error_response(http_error(request, exc), dict(exc.headers or {}))


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's parameter validation, as the 400 every other bad input gets."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )
    return error_response(ApiError(400, _shown(problems, 2000)))


@api.exception_handler(Exception)
async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """An error no route handled, as an OpenAI 500 rather than Starlette's plain text."""
    return error_response(
        ApiError(
            500,
            f"internal error: {type(exc).__name__}",
            code="internal_error",
            kind="server_error",
        )
    )


# Used where a Serve config sets none; the shipped configs size them from their versions
# (serving.spec.router_queue_bounds): the proxy may queue one default batch for a router.
@serve.deployment(
    max_ongoing_requests=256,
    max_queued_requests=ModelUserConfig().max_batch_size,
    backpressure_config={"retry_after_s": RETRY_AFTER_S},
)
@serve.ingress(api)
class Router:
    """Routes OpenAI-style requests of one application to its version deployments."""

    def __init__(self, args: RouterArgs, models: dict[str, DeploymentHandle]) -> None:
        self.args = args
        self.bound = dict(models)
        """Versions bound in this router's own application (build_app); none for build_router."""
        self.metrics = RouterMetrics(args.model_name)
        self.table: LiveSetting[RouterTable] = LiveSetting(
            "versions and weights", self.metrics.config_rejected.inc
        )
        self._remote: dict[tuple[str, str], DeploymentHandle] = {}
        self.rng = random.Random()
        self.created = int(time.time())
        self.limits = BodyLimits(max_bytes=args.max_body_bytes)
        self.app_name = _application_name()
        self.admission = Admission(args.latency_target_ms)
        self._routes = get_openapi(title=api.title, version=API_VERSION, routes=api.routes)
        self.openapi_document: dict[str, Any] = {}

    def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Adopt a new version table and weights; invalid ones are refused and the old stay."""
        if user_config is None:
            user_config = {"weights": _first_takes_all(list(self.bound))}
        before = self.table.value.names if self.table.configured else None
        if self.table.update(lambda: parse_router_config(user_config, list(self.bound))):
            table = self.table.value
            self.metrics.record_weights(table.weights)
            if table.names != before:
                self.openapi_document = openapi_document(
                    self._routes, self.args, table.names, self.limits
                )
                self._remote = {
                    key: handle
                    for key, handle in self._remote.items()
                    if table.applications.get(key[1]) == key[0]
                }
                logger.info("versions now %s", table.applications)
            logger.info("traffic weights now %s", table.weights)

    @property
    def weights(self) -> dict[str, int]:
        """The traffic weights in force."""
        return self.table.value.weights

    @property
    def version_names(self) -> list[str]:
        """The versions this router sends to now."""
        return self.table.value.names

    def _handle(self, version: str) -> DeploymentHandle:
        """The handle of a version: bound in this application, or in its own application."""
        bound = self.bound.get(version)
        if bound is not None:
            return bound
        app = self.table.value.applications[version]
        assert app is not None
        key = (app, version)
        if key not in self._remote:
            # Not checked against the controller: a version's application may still be
            # deploying when the table names it; it gets traffic only once it runs.
            self._remote[key] = serve.get_deployment_handle(
                deployment_name(version), app_name=app, _check_exists=False
            )
        return self._remote[key]

    @api.get("/health")
    async def health(self) -> dict[str, Any]:
        """Liveness plus what this router is doing: task, weights, last refused update."""
        return {
            "status": "ok",
            "task": self.args.task,
            "model": self.args.model_name,
            "versions": self.version_names,
            "applications": self.table.value.applications,
            "weights": self.weights,
            "last_config_error": self.table.last_error,
            "admission": self.admission.snapshot(),
            "router_pid": os.getpid(),
        }

    @api.get("/versions")
    async def versions(self) -> dict[str, Any]:
        """Per version, what one of its replicas reports: process, batching in force."""
        names = self.version_names
        answers = await asyncio.gather(
            *(self._handle(name).describe.remote() for name in names), return_exceptions=True
        )
        return {
            name: answer if isinstance(answer, dict) else {"error": repr(answer)}
            for name, answer in zip(names, answers, strict=True)
        }

    @api.get(OPENAPI_PATH, include_in_schema=False)
    async def openapi(self, request: Request) -> JSONResponse:
        """This application's OpenAPI document: routes, request schemas and limits."""
        prefix = request.scope.get("root_path") or "/"
        return JSONResponse({**self.openapi_document, "servers": [{"url": prefix}]})

    @api.get("/v1/models", response_model=ModelList)
    async def list_models(self) -> dict[str, Any]:
        """The model ids this application answers to."""
        return models_body(self.args.model_name, self.version_names, self.created)

    @api.post(
        EMBEDDINGS_PATH,
        responses={200: {"model": EmbeddingList}, **error_responses(400, 404, 413, 500, 503)},
    )
    async def embeddings(self, request: Request) -> Response:
        """OpenAI-compatible embeddings."""
        return await self._answer(request, "embeddings", self._embeddings_call)

    @api.post(
        COMPLETIONS_PATH,
        responses={
            200: {"model": CompletionList, "content": SSE_CONTENT},
            **error_responses(400, 404, 413, 500, 503),
        },
    )
    async def completions(self, request: Request) -> Response:
        """OpenAI-compatible text completions; server-sent events with stream=true."""
        return await self._answer(request, "generation", self._completions_call)

    @api.post(
        CHAT_PATH,
        responses={
            200: {"model": ChatCompletion, "content": SSE_CONTENT},
            **error_responses(400, 404, 413, 500, 503),
        },
    )
    async def chat_completions(self, request: Request) -> Response:
        """OpenAI-compatible chat completions; server-sent events with stream=true."""
        return await self._answer(request, "generation", self._chat_call)

    def _embeddings_call(self, body: dict[str, Any]) -> _Call:
        request = parse_request(EmbeddingRequest, body)
        texts = request.texts
        check_inputs(texts, "input", self.args)
        return _Call(
            model=request.model,
            invoke=lambda handle, start_by: handle.embed.remote(texts, start_by),
            render=lambda result: embeddings_body(result, request.model, request.encoding_format),
        )

    def _completions_call(self, body: dict[str, Any]) -> _Call | _StreamedCall:
        request = parse_request(CompletionRequest, body)
        prompts = request.prompts
        check_inputs(prompts, "prompt", self.args)
        max_tokens = max_tokens_of(request, self.args)
        if request.stream:
            return _StreamedCall(
                model=request.model,
                stream=lambda handle, start_by: handle.stream_completion.remote(
                    prompts[0],
                    None,
                    max_tokens,
                    request.sampling_temperature,
                    request.top_p,
                    request.stops,
                    start_by,
                ),
                events=StreamFormat(
                    request.model, False, stream_options_usage(request.stream_options)
                ),
            )
        return _Call(
            model=request.model,
            invoke=lambda handle, start_by: handle.complete.remote(
                prompts,
                max_tokens,
                request.sampling_temperature,
                request.top_p,
                request.stops,
                start_by,
            ),
            render=lambda result: completions_body(result, request.model),
        )

    def _chat_call(self, body: dict[str, Any]) -> _Call | _StreamedCall:
        request = parse_request(ChatCompletionRequest, body)
        messages = request.plain_messages()
        check_inputs([m["content"] for m in messages], "messages", self.args)
        max_tokens = max_tokens_of(request, self.args, request.token_field)
        sampling = (max_tokens, request.sampling_temperature, request.top_p, request.stops)
        if request.stream:
            return _StreamedCall(
                model=request.model,
                stream=lambda handle, start_by: handle.stream_completion.remote(
                    None, messages, *sampling, start_by
                ),
                events=StreamFormat(
                    request.model, True, stream_options_usage(request.stream_options)
                ),
            )
        return _Call(
            model=request.model,
            invoke=lambda handle, start_by: handle.chat.remote(messages, *sampling, start_by),
            render=lambda result: chat_completion_body(result, request.model),
        )

    async def _answer(
        self,
        request: Request,
        task: str,
        prepare: Callable[[dict[str, Any]], _Call | _StreamedCall],
    ) -> Response:
        endpoint = request.url.path.rsplit("/", 1)[-1]
        started = time.perf_counter()
        wait_ms = self.args.max_queue_wait_ms
        start_by = None if wait_ms is None else time.time() + wait_ms / 1000.0
        version = NO_VERSION
        try:
            if task != self.args.task:
                raise ApiError(
                    404,
                    f"this application serves {self.args.task}, not {task}",
                    code="unsupported_endpoint",
                )
            call = prepare(await read_json_object(request, self.limits))
            pinned = resolve_model(call.model, self.args.model_name, self.version_names)
            version = pinned or pick_weighted(self.weights, self.rng)
            if isinstance(call, _StreamedCall):
                return await self._streamed(call, version, endpoint, started, start_by)
            result = await self._admitted(call, version, start_by)
            body = call.render(result)
        except Exception as exc:
            error = self._as_api_error(exc, version)
            record_failure(self.metrics, version, endpoint, error)
            headers = {**(error_headers(error, version) or {}), **self._admission_headers(request)}
            return error_response(error, headers or None)
        self.metrics.record_success(version, endpoint, (time.perf_counter() - started) * 1e3)
        headers = {**self._served_headers(result.served_by), **self._admission_headers(request)}
        return JSONResponse(body, headers=headers)

    def _admission_headers(self, request: Request) -> dict[str, str]:
        """What the proxy's admission learns from every answer (serving/proxy_admission.py)."""
        if self.args.latency_target_ms is None:
            return {}
        weights = self.weights
        return {
            ADMITS_HEADER: str(self.admission.admits(weights)),
            ROUTER_HEADER: str(os.getpid()),
            PREFIX_HEADER: request.scope.get("root_path") or "/",
            APPLICATION_HEADER: self.app_name,
            MODEL_HEADER: self.args.model_name,
            WEIGHTS_HEADER: ",".join(f"{name}={weight}" for name, weight in weights.items()),
        }

    async def _streamed(
        self,
        call: _StreamedCall,
        version: str,
        endpoint: str,
        started: float,
        start_by: float | None,
    ) -> StreamingResponse:
        """Open the version's stream and answer it as server-sent events.

        The version's first chunk (empty) says the prompt was accepted: a refusal raises
        here, before the 200 is sent. An error after that travels as an error event.
        Streams are not admitted by latency: their length is the answer's, not a queue's.
        """
        chunks = call.stream(self._handle(version).options(stream=True), start_by)
        first = await chunks.__anext__()
        events, metrics = call.events, self.metrics

        async def body() -> Any:
            ended = False
            try:
                yield events.chunk(first)
                last = first
                async for step in chunks:
                    last = step
                    yield events.chunk(step)
                if events.include_usage:
                    yield events.usage(last)
                ended = True
                metrics.record_success(version, endpoint, (time.perf_counter() - started) * 1e3)
            except Exception as exc:
                error = self._as_api_error(exc, version)
                record_failure(metrics, version, endpoint, error)
                yield events.error(error.message, error.code)
                ended = True
            finally:
                if not ended:  # the client went away: free the version's sequence
                    chunks.cancel()
            yield DONE

        headers = {
            VERSION_HEADER: version,
            ROUTER_PID_HEADER: str(os.getpid()),
            "cache-control": "no-cache",
        }
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    async def _admitted(self, call: _Call, version: str, start_by: float | None) -> Any:
        """Send `call` to `version` if its latency limit admits it, and adapt the limit."""
        admitted_at = self.admission.admit(version)
        outcome = "failed"
        try:
            result = await call.invoke(self._handle(version), start_by)
            outcome = "answered"
            return result
        except _SHED:
            outcome = "shed"
            raise
        finally:
            self.admission.release(version, admitted_at, outcome)

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
        unavailable = unavailable_error(exc, version)
        if unavailable is not None:
            return unavailable
        logger.exception("version %s failed", version)
        return ApiError(
            500,
            f"version {version} failed: {type(exc).__name__}",
            code="model_error",
            kind="server_error",
        )
