"""Every answer of an application with admission tells Serve's proxy its route, name,
model, weights, router and how many requests that router admits now; an application
without a latency target says nothing."""

from __future__ import annotations

import httpx
import pytest

from serving.admission import CEILING
from serving.proxy_admission import (
    ADMITS_HEADER,
    APPLICATION_HEADER,
    MODEL_HEADER,
    PREFIX_HEADER,
    ROUTER_HEADER,
    WEIGHTS_HEADER,
)
from tests.serving.conftest import EMBEDDINGS_APP, ServingApps

pytestmark = pytest.mark.integration


def test_answers_and_errors_carry_the_admission_headers(serving_apps: ServingApps) -> None:
    url = serving_apps.embeddings_url
    answered = httpx.post(url, json={"model": "minilm", "input": "hello"}, timeout=60)
    refused = httpx.post(url, json={"model": "minilm"}, timeout=60)
    assert answered.status_code == 200, answered.text
    assert refused.status_code == 400, refused.text
    for response in (answered, refused):
        headers = response.headers
        assert 1 <= int(headers[ADMITS_HEADER]) <= CEILING, "v1's limit: the only version sent to"
        assert int(headers[ROUTER_HEADER]) > 0
        assert headers[PREFIX_HEADER] == "/"
        assert headers[APPLICATION_HEADER] == EMBEDDINGS_APP
        assert headers[MODEL_HEADER] == "minilm"
        assert headers[WEIGHTS_HEADER] == "v1=100,v2=0"


def test_an_application_without_a_target_announces_nothing(serving_apps: ServingApps) -> None:
    response = httpx.post(
        serving_apps.completions_url,
        json={"model": "tiny-lm", "prompt": "hi", "max_tokens": 2},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert ADMITS_HEADER not in response.headers
