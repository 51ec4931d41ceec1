"""Input the parser or a tokenizer would refuse is a 400 before any version is chosen.

Such input must never count as an error of a version: canaries are judged on their error
rate, and a client could otherwise roll one back at will. Each hostile body is sent to a
live router, answered 400 in OpenAI's format with no version header, and counted under
the `none` version only; the error counters of the real versions do not move.
"""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest

from tests.conftest import METRICS_REPORT_INTERVAL_MS, RayServeCluster
from tests.serving.conftest import GENERATION_PREFIX, ServingApps, samples, wait_for_samples

pytestmark = pytest.mark.integration

ERRORS = "ray_governor_request_errors_total"
VERSION_HEADER = "x-governor-version"

DEEP = b"[" * 3000 + b"]" * 3000
HOSTILE_EMBEDDINGS: list[tuple[str, bytes, str]] = [
    ("escaped_lone_surrogate", b'{"model": "minilm", "input": "\\ud800"}', "invalid_text"),
    ("surrogate_to_pinned_v2", b'{"model": "minilm:v2", "input": "\\ud800"}', "invalid_text"),
    ("surrogate_in_a_list", b'{"model": "minilm", "input": ["ok", "\\udc00"]}', "invalid_text"),
    ("raw_surrogate_bytes", b'{"model": "minilm", "input": "\xed\xa0\x80"}', "invalid_encoding"),
    ("nul_character", b'{"model": "minilm", "input": "a\\u0000b"}', "invalid_text"),
    ("invalid_utf8", b'{"model": "minilm", "input": "\xff\xfe"}', "invalid_encoding"),
    ("nested_3000_deep", DEEP, "too_deeply_nested"),
    ("nested_in_a_field", b'{"model": "minilm", "input": ' + DEEP + b"}", "too_deeply_nested"),
    ("nan", b'{"model": "minilm", "input": "x", "dimensions": NaN}', "invalid_number"),
    ("float_overflow", b'{"model": "minilm", "input": "x", "dimensions": 1e999}', "invalid_number"),
    (
        "huge_int",
        b'{"model": "minilm", "input": "x", "dimensions": ' + b"9" * 5000 + b"}",
        "invalid_number",
    ),
]
HOSTILE_COMPLETIONS: list[tuple[str, bytes, str]] = [
    ("surrogate_prompt", b'{"model": "tiny-lm", "prompt": "\\udbff"}', "invalid_text"),
    ("nul_stop", b'{"model": "tiny-lm", "prompt": "hi", "stop": "\\u0000"}', "invalid_text"),
    (
        "infinite_max_tokens",
        b'{"model": "tiny-lm", "prompt": "hi", "max_tokens": Infinity}',
        "invalid_number",
    ),
    (
        "int64_overflow",
        b'{"model": "tiny-lm", "prompt": "hi", "max_tokens": 9223372036854775808}',
        "invalid_number",
    ),
]


def _post(url: str, raw: bytes) -> httpx.Response:
    return httpx.post(url, content=raw, headers={"content-type": "application/json"}, timeout=60)


def _assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == code, body
    assert VERSION_HEADER not in response.headers


def _version_errors(cluster: RayServeCluster) -> dict[tuple[str, str], float]:
    """Errors counted per (application, version) for the real versions."""
    totals: Counter[tuple[str, str]] = Counter()
    for sample in samples(cluster, ERRORS):
        if sample.labels.get("version") != "none":
            totals[(sample.labels["application"], sample.labels["version"])] += sample.value
    return dict(totals)


def _settled_version_errors(cluster: RayServeCluster) -> dict[tuple[str, str], float]:
    """The real versions' error counts once earlier requests have all been exported."""
    reading = _version_errors(cluster)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(METRICS_REPORT_INTERVAL_MS / 1000 * 1.5)
        again = _version_errors(cluster)
        if again == reading:
            return reading
        reading = again
    raise AssertionError("version error counters did not settle")


def _refused(cluster: RayServeCluster, app: str, kind: str) -> float:
    return sum(
        s.value
        for s in samples(cluster, ERRORS)
        if s.labels.get("application") == app
        and s.labels.get("version") == "none"
        and s.labels.get("kind") == kind
    )


def test_hostile_input_is_a_400_that_no_version_is_blamed_for(serving_apps: ServingApps) -> None:
    cluster = serving_apps.cluster
    before_versions = _settled_version_errors(cluster)
    sent: Counter[tuple[str, str]] = Counter()
    kinds = {kind for _, _, kind in HOSTILE_EMBEDDINGS + HOSTILE_COMPLETIONS}
    before_refused = {
        (app, kind): _refused(cluster, app, kind)
        for app in ("embeddings", "generation")
        for kind in kinds
    }
    for _, raw, code in HOSTILE_EMBEDDINGS:
        _assert_refused(_post(serving_apps.embeddings_url, raw), code)
        sent[("embeddings", code)] += 1
    for _, raw, code in HOSTILE_COMPLETIONS:
        _assert_refused(_post(serving_apps.completions_url, raw), code)
        sent[("generation", code)] += 1

    for (app, kind), count in sent.items():
        wait_for_samples(
            cluster,
            ERRORS,
            {"application": app, "version": "none", "kind": kind, "status": "400"},
            accept=lambda found, want=before_refused[(app, kind)] + count: (
                sum(s.value for s in found) >= want
            ),
        )
    assert _version_errors(cluster) == before_versions


def test_service_still_serves_after_hostile_input(serving_apps: ServingApps) -> None:
    for _, raw, _ in HOSTILE_EMBEDDINGS:
        _post(serving_apps.embeddings_url, raw)
    ok = httpx.post(
        serving_apps.embeddings_url, json={"model": "minilm:v2", "input": "still here"}, timeout=60
    )
    assert ok.status_code == 200 and ok.headers[VERSION_HEADER] == "v2"


def test_near_zero_temperature_decodes_greedily(serving_apps: ServingApps) -> None:
    body = {"model": "tiny-lm", "prompt": "hello", "max_tokens": 4}
    tiny = httpx.post(
        serving_apps.completions_url, json={**body, "temperature": 2.2250738585e-313}, timeout=60
    )
    greedy = httpx.post(serving_apps.completions_url, json={**body, "temperature": 0}, timeout=60)
    assert tiny.status_code == 200, tiny.text
    assert tiny.json()["choices"][0]["text"] == greedy.json()["choices"][0]["text"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nothing", 404, "unknown_route"),
        ("GET", "/v1/embeddings", 405, "method_not_allowed"),
        ("DELETE", "/v1/models", 405, "method_not_allowed"),
        ("GET", "/docs", 404, "unknown_route"),
        ("GET", "/redoc", 404, "unknown_route"),
        ("GET", f"{GENERATION_PREFIX}/v1/nothing", 404, "unknown_route"),
        ("PATCH", f"{GENERATION_PREFIX}/v1/completions", 405, "method_not_allowed"),
    ],
)
def test_framework_errors_are_openai_bodies(
    serving_apps: ServingApps, method: str, path: str, status: int, code: str
) -> None:
    response = httpx.request(method, f"{serving_apps.cluster.http_url}{path}", timeout=60)
    assert response.status_code == status
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["code"] == code


def test_openapi_document_is_served_per_application(serving_apps: ServingApps) -> None:
    base = serving_apps.cluster.http_url
    embeddings = httpx.get(f"{base}/openapi.json", timeout=60).json()
    generation = httpx.get(f"{base}{GENERATION_PREFIX}/openapi.json", timeout=60).json()
    assert "/v1/embeddings" in embeddings["paths"] and "/v1/completions" in generation["paths"]
    assert "/v1/chat/completions" in generation["paths"]
    assert "/v1/chat/completions" not in embeddings["paths"]
    assert embeddings["x-governor-limits"]["max_body_bytes"] == 1_048_576
    assert generation["x-governor-limits"]["max_tokens"] == 96
    assert generation["servers"] == [{"url": GENERATION_PREFIX}]
