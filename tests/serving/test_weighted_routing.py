"""Versions are drawn by weight; `<model>:<version>` pins one; unknown models are 404."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from serving.errors import ApiError
from serving.routing import pick_weighted, resolve_model


def test_zero_weight_version_never_receives_traffic() -> None:
    rng = random.Random(1)
    drawn = {pick_weighted({"v1": 100, "v2": 0}, rng) for _ in range(1000)}
    assert drawn == {"v1"}


def test_draws_follow_the_weights() -> None:
    rng = random.Random(7)
    counts = Counter(pick_weighted({"v1": 70, "v2": 30}, rng) for _ in range(10_000))
    assert abs(counts["v2"] / 10_000 - 0.30) < 0.02


def test_model_name_routes_by_weight_and_suffix_pins_a_version() -> None:
    assert resolve_model("minilm", "minilm", ["v1", "v2"]) is None
    assert resolve_model("minilm:v2", "minilm", ["v1", "v2"]) == "v2"


@pytest.mark.parametrize("requested", ["gpt-4", "minilm:v9", "minilm:"])
def test_unknown_model_is_404_listing_what_exists(requested: str) -> None:
    with pytest.raises(ApiError) as caught:
        resolve_model(requested, "minilm", ["v1", "v2"])
    assert caught.value.status == 404
    assert requested in caught.value.message and "minilm:v2" in caught.value.message
