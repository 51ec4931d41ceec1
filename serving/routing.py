"""Choosing the version that serves a request."""

from __future__ import annotations

import random

from serving.errors import ApiError


def pick_weighted(weights: dict[str, int], rng: random.Random) -> str:
    """Draw a version with probability weight/100 (weights are ints summing to 100)."""
    point = rng.randrange(100)
    for version, weight in weights.items():
        if point < weight:
            return version
        point -= weight
    raise ValueError(f"weights do not sum to 100: {weights}")


def resolve_model(requested: str, model_name: str, versions: list[str]) -> str | None:
    """Map a request's `model` to a pinned version, or None for weighted routing.

    `<model_name>` routes by weight; `<model_name>:<version>` pins one version.
    """
    if requested == model_name:
        return None
    name, _, version = requested.rpartition(":")
    if name == model_name and version in versions:
        return version
    available = [model_name, *(f"{model_name}:{v}" for v in versions)]
    raise ApiError(
        404,
        f"model {requested!r} does not exist here; available: {available}",
        param="model",
        code="model_not_found",
    )
