"""Chat completions and server-sent event streams of the tiny LM, through the official
`openai` client and raw HTTP: formats, usage, bad input, and a client that leaves."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI

from tests.serving.conftest import ServingApps

pytestmark = pytest.mark.integration

MODEL = "tiny-lm"


@pytest.fixture
def client(serving_apps: ServingApps) -> OpenAI:
    return OpenAI(base_url=f"{serving_apps.generation_url}/v1", api_key="unused", max_retries=0)


def test_a_chat_is_answered_in_openai_format(client: OpenAI) -> None:
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
        max_tokens=6,
        temperature=0,
    )
    assert chat.object == "chat.completion"
    (choice,) = chat.choices
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert chat.usage is not None and 1 <= chat.usage.completion_tokens <= 6


def test_a_streamed_chat_adds_up_to_the_same_answer(client: OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "the quick brown fox"}]
    whole = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=12, temperature=0
    )
    stream = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == whole.choices[0].message.content
    assert with_choices[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_a_streamed_completion_adds_up_to_the_same_text(client: OpenAI) -> None:
    whole = client.completions.create(model=MODEL, prompt="hello", max_tokens=10, temperature=0)
    parts = client.completions.create(
        model=MODEL, prompt="hello", max_tokens=10, temperature=0, stream=True
    )
    chunks = list(parts)
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert all(c.object == "text_completion" for c in chunks)


def test_the_stream_is_server_sent_events_ending_with_done(serving_apps: ServingApps) -> None:
    body = {"model": MODEL, "prompt": "hello", "max_tokens": 4, "stream": True}
    with httpx.stream(
        "POST", f"{serving_apps.generation_url}/v1/completions", json=body, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-governor-version"] == "v1"
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert all("choices" in json.loads(line[6:]) for line in lines[:-1])


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": ["hi"]}]}, "content"),
        ({"messages": [{"role": "user", "content": 3}]}, "content"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
        ({"messages": [{"role": "user", "content": "hi"}], "seed": 7}, "seed"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10_000}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}], "tools": []}, "tools"),
        ({"messages": [{"role": "user", "content": "qzjv" * 45}], "max_tokens": 90}, "context"),
        ({"messages": [{"role": "user", "content": "hi"}], "stream_options": {}}, "stream"),
    ],
)
def test_bad_chat_input_is_a_400_that_names_it(
    serving_apps: ServingApps, body: dict[str, Any], named: str
) -> None:
    url = f"{serving_apps.generation_url}/v1/chat/completions"
    response = httpx.post(url, json={"model": MODEL, **body}, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert named in error["message"] or named == error["param"], error
    assert error["type"] == "invalid_request_error"


def test_a_stream_refused_before_it_starts_is_a_plain_400(client: OpenAI) -> None:
    with pytest.raises(BadRequestError, match="context"):
        client.completions.create(model=MODEL, prompt="qzjv" * 45, max_tokens=90, stream=True)


def test_a_client_that_leaves_mid_stream_frees_its_sequence(serving_apps: ServingApps) -> None:
    def sequences() -> dict[str, int]:
        url = f"{serving_apps.generation_url}/versions"
        return dict(httpx.get(url, timeout=30).json()["v1"]["sequences"])

    before = sequences()["cancelled"]
    # Greedy: the test model's answer to this prompt runs its full 96 tokens, which take
    # the replica about a second on a CPU: time enough to see the sequence cut short.
    body = {"model": MODEL, "prompt": "hello world", "max_tokens": 96, "temperature": 0}
    with httpx.stream(
        "POST",
        f"{serving_apps.generation_url}/v1/completions",
        json={**body, "stream": True},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["choices"][0]["text"]:
                break  # the first text arrived: leave
    deadline = time.monotonic() + 20
    while sequences()["cancelled"] == before and time.monotonic() < deadline:
        time.sleep(0.2)
    after = sequences()
    assert after["cancelled"] == before + 1, after
    assert after["running"] == 0, after
    # and the replica still serves
    again = httpx.post(
        f"{serving_apps.generation_url}/v1/completions", json={**body, "max_tokens": 3}, timeout=60
    )
    assert again.status_code == 200, again.text
