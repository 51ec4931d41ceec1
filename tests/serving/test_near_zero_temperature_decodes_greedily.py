"""A temperature too small to divide logits by is sampled as 0: greedy, never a 500."""

from __future__ import annotations

import pytest

from serving.openai_api import GREEDY_BELOW_TEMPERATURE, CompletionRequest, parse_request


@pytest.mark.parametrize(
    ("temperature", "sampled"),
    [
        (0, 0.0),
        (2.2250738585e-313, 0.0),
        (5e-324, 0.0),
        (GREEDY_BELOW_TEMPERATURE / 2, 0.0),
        (GREEDY_BELOW_TEMPERATURE, GREEDY_BELOW_TEMPERATURE),
        (0.7, 0.7),
        (2, 2.0),
    ],
)
def test_sampling_temperature(temperature: float, sampled: float) -> None:
    body = {"model": "m", "prompt": "x", "temperature": temperature}
    assert parse_request(CompletionRequest, body).sampling_temperature == sampled
