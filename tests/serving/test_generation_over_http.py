"""Completions from the test-made tiny causal LM, loaded by path, over HTTP."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI

from tests.serving.conftest import GENERATION_PREFIX, ServingApps

pytestmark = pytest.mark.integration


def _complete(apps: ServingApps, **body: object) -> httpx.Response:
    return httpx.post(apps.completions_url, json={"model": "tiny-lm", **body}, timeout=60)


def test_temperature_zero_is_deterministic_and_respects_max_tokens(
    serving_apps: ServingApps,
) -> None:
    first = _complete(serving_apps, prompt="hello world", max_tokens=6, temperature=0)
    second = _complete(serving_apps, prompt="hello world", max_tokens=6, temperature=0)
    assert first.status_code == 200, first.text
    assert first.headers["x-governor-version"] == "v1"
    assert first.json()["choices"][0]["text"] == second.json()["choices"][0]["text"]
    usage = first.json()["usage"]
    assert 1 <= usage["completion_tokens"] <= 6
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_several_prompts_get_one_choice_each(serving_apps: ServingApps) -> None:
    response = _complete(serving_apps, prompt=["the quick", "hello"], max_tokens=3, temperature=0)
    assert response.status_code == 200, response.text
    choices = response.json()["choices"]
    assert [c["index"] for c in choices] == [0, 1]
    assert all(c["finish_reason"] in {"length", "stop"} for c in choices)


def test_prompt_over_the_context_is_a_400(serving_apps: ServingApps) -> None:
    response = _complete(serving_apps, prompt="qzjv" * 45, max_tokens=32, temperature=0)
    assert response.status_code == 400
    assert "exceeds the model's context" in response.json()["error"]["message"]


def test_openai_client_gets_completions(serving_apps: ServingApps) -> None:
    client = OpenAI(
        base_url=f"{serving_apps.cluster.http_url}{GENERATION_PREFIX}/v1", api_key="unused"
    )
    completion = client.completions.create(
        model="tiny-lm", prompt="hello world", max_tokens=5, temperature=0
    )
    assert completion.object == "text_completion"
    assert completion.usage is not None and 1 <= completion.usage.completion_tokens <= 5
    again = client.completions.create(
        model="tiny-lm:v1", prompt="hello world", max_tokens=5, temperature=0
    )
    assert again.choices[0].text == completion.choices[0].text
    assert [m.id for m in client.models.list()] == ["tiny-lm", "tiny-lm:v1"]
