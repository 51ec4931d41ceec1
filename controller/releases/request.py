"""A request to release a model artifact as a new version of an application."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_TEXT_FIELDS = ("id", "app", "version", "model", "actor")
"""The fields of a request that are non-empty strings."""


@dataclass(frozen=True)
class ReleaseRequest:
    """One request to release a model artifact as a new version of an application."""

    id: str
    app: str
    version: str
    """The name of the new version."""
    model: str
    """Model source, e.g. `bundled:all-MiniLM-L6-v2`, `made:tiny-chat`, `/models/x`, `hf:org/n`."""
    actor: str
    """Who asked for the release."""
    requested_at: datetime
    """When it was asked for (timezone-aware)."""
    meta: Mapping[str, str] = field(default_factory=dict)
    """Release metadata, e.g. `{"owner": "alice"}`."""
    scores: Mapping[str, float] = field(default_factory=dict)
    """Evaluation scores by name."""

    def __post_init__(self) -> None:
        if self.requested_at.utcoffset() is None:
            raise ValueError(
                f"requested_at must carry a time zone, got the naive {self.requested_at}"
            )

    def to_json(self) -> dict[str, Any]:
        """The request as a JSON-ready document (`requested_at` in ISO-8601)."""
        return {
            "id": self.id,
            "app": self.app,
            "version": self.version,
            "model": self.model,
            "actor": self.actor,
            "requested_at": self.requested_at.isoformat(),
            "meta": dict(self.meta),
            "scores": dict(self.scores),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ReleaseRequest:
        """The request a `to_json` document describes; ValueError naming a bad or missing field."""
        if not isinstance(doc, Mapping):
            raise ValueError(f"a release request must be a mapping, got {type(doc).__name__}")
        text = {name: _text(doc, name) for name in _TEXT_FIELDS}
        return cls(
            id=text["id"],
            app=text["app"],
            version=text["version"],
            model=text["model"],
            actor=text["actor"],
            requested_at=_aware_time(doc),
            meta=_meta(doc.get("meta", {})),
            scores=_scores(doc.get("scores", {})),
        )


def _text(doc: Mapping[str, Any], name: str) -> str:
    """Field `name` of `doc`: a non-empty string."""
    if name not in doc:
        raise ValueError(f"release request: {name}: missing")
    value = doc[name]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"release request: {name}: must be a non-empty string, got {value!r}")
    return value


def _aware_time(doc: Mapping[str, Any]) -> datetime:
    """`requested_at` of `doc`: an ISO-8601 time with a time zone."""
    if "requested_at" not in doc:
        raise ValueError("release request: requested_at: missing")
    value = doc["requested_at"]
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None:
        raise ValueError(f"release request: requested_at: must be an ISO-8601 time, got {value!r}")
    if when.utcoffset() is None:
        raise ValueError(
            f"release request: requested_at: must carry a time zone (e.g. +00:00), got {value!r}"
        )
    return when


def _meta(value: object) -> dict[str, str]:
    """The `meta` mapping: string keys to string values."""
    if not isinstance(value, Mapping):
        raise ValueError(
            f"release request: meta: must be a mapping of strings, got {type(value).__name__}"
        )
    out: dict[str, str] = {}
    for key, text in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"release request: meta: keys must be non-empty strings, got {key!r}")
        if not isinstance(text, str):
            raise ValueError(f"release request: meta.{key}: must be a string, got {text!r}")
        out[key] = text
    return out


def _scores(value: object) -> dict[str, float]:
    """The `scores` mapping: string names to finite numbers."""
    if not isinstance(value, Mapping):
        raise ValueError(
            f"release request: scores: must be a mapping of numbers, got {type(value).__name__}"
        )
    out: dict[str, float] = {}
    for name, number in value.items():
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"release request: scores: names must be non-empty strings, got {name!r}"
            )
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ValueError(f"release request: scores.{name}: must be a number, got {number!r}")
        try:
            score = float(number)
        except OverflowError:
            score = math.inf
        if not math.isfinite(score):
            raise ValueError(
                f"release request: scores.{name}: must be a finite number, got {number!r}"
            )
        out[name] = score
    return out
