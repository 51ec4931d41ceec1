"""Bad requests get a 4xx that names the problem, and the service keeps serving."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.serving.conftest import ServingApps

pytestmark = pytest.mark.integration

EMBEDDING_CASES: list[tuple[str, Any, int, str]] = [
    ("not_json", b"{not json", 400, "not valid JSON"),
    ("not_an_object", [1, 2], 400, "must be a JSON object"),
    ("missing_input", {"model": "minilm"}, 400, "body.input: Field required"),
    ("wrong_type", {"model": "minilm", "input": 5}, 400, "body.input"),
    ("empty_list", {"model": "minilm", "input": []}, 400, "input must not be empty"),
    ("empty_string", {"model": "minilm", "input": ""}, 400, "input is an empty string"),
    ("too_many", {"model": "minilm", "input": ["x"] * 65}, 400, "65 items; the maximum is 64"),
    ("too_long", {"model": "minilm", "input": "x" * 8193}, 400, "the maximum is 8192"),
    ("unknown_model", {"model": "gpt-4", "input": "x"}, 404, "'gpt-4' does not exist"),
    ("unknown_field", {"model": "minilm", "input": "x", "tempo": 1}, 400, "body.tempo"),
    ("oversized_body", {"model": "minilm", "input": "x" * 1_100_000}, 413, "1048576 bytes"),
]

COMPLETION_CASES: list[tuple[str, Any, int, str]] = [
    ("max_tokens_zero", {"prompt": "hi", "max_tokens": 0}, 400, "max_tokens must be within"),
    ("max_tokens_too_big", {"prompt": "hi", "max_tokens": 97}, 400, "within 1..96"),
    ("max_tokens_wrong_type", {"prompt": "hi", "max_tokens": "3"}, 400, "body.max_tokens"),
    ("stream_of_two", {"prompt": ["a", "b"], "stream": True}, 400, "takes one prompt"),
    ("missing_prompt", {}, 400, "body.prompt: Field required"),
    ("temperature_range", {"prompt": "hi", "temperature": 5}, 400, "body.temperature"),
]


def _post(url: str, body: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.post(url, content=body, timeout=60)
    return httpx.post(url, json=body, timeout=60)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [case[1:] for case in EMBEDDING_CASES],
    ids=[case[0] for case in EMBEDDING_CASES],
)
def test_bad_embedding_request(
    serving_apps: ServingApps, body: Any, status: int, message: str
) -> None:
    response = _post(serving_apps.embeddings_url, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [case[1:] for case in COMPLETION_CASES],
    ids=[case[0] for case in COMPLETION_CASES],
)
def test_bad_completion_request(
    serving_apps: ServingApps, body: Any, status: int, message: str
) -> None:
    response = _post(serving_apps.completions_url, {"model": "tiny-lm", **body})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]


def test_endpoint_of_the_other_task_is_404(serving_apps: ServingApps) -> None:
    url = f"{serving_apps.cluster.http_url}/v1/completions"
    response = httpx.post(url, json={"model": "minilm", "prompt": "hi"}, timeout=60)
    assert response.status_code == 404
    assert "serves embeddings" in response.json()["error"]["message"]


def test_service_keeps_serving_after_bad_requests(serving_apps: ServingApps) -> None:
    for case in EMBEDDING_CASES:
        _post(serving_apps.embeddings_url, case[1])
    response = httpx.post(
        serving_apps.embeddings_url, json={"model": "minilm", "input": "still here"}, timeout=60
    )
    assert response.status_code == 200
    assert serving_apps.health()["status"] == "ok"
