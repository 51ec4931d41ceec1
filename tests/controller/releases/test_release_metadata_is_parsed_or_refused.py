"""Release metadata: a release.yaml and key=value pairs are parsed and merged, or refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controller.releases.metadata import (
    MetadataError,
    merged,
    parse_meta_pairs,
    parse_release_file,
)
from controller.releases.request import ReleaseRequest

RELEASE_YAML = """\
owner: alice@example.com
description: distilled encoder
ticket: 1234
scores:
  sts_spearman: 0.83
  latency_regression_ms: 2
"""


def test_a_release_file_gives_its_fields_and_scores() -> None:
    meta, scores = parse_release_file(RELEASE_YAML, "release.yaml")
    assert meta == {
        "owner": "alice@example.com",
        "description": "distilled encoder",
        "ticket": "1234",
    }
    assert scores == {"sts_spearman": 0.83, "latency_regression_ms": 2.0}
    assert all(isinstance(v, float) for v in scores.values())


def test_an_empty_release_file_gives_nothing() -> None:
    assert parse_release_file("", "release.yaml") == ({}, {})
    assert parse_release_file("owner: bob\nscores:\n", "release.yaml") == ({"owner": "bob"}, {})


def test_pairs_give_fields_and_score_dot_pairs_give_scores() -> None:
    meta, scores = parse_meta_pairs(
        ["owner=bob", "note=a=b", "empty=", "score.sts_spearman=0.9", "score.loss= -1e-3 "]
    )
    assert meta == {"owner": "bob", "note": "a=b", "empty": ""}
    assert scores == {"sts_spearman": 0.9, "loss": -0.001}


def test_pairs_override_the_file() -> None:
    both = merged(
        parse_release_file(RELEASE_YAML, "release.yaml"),
        parse_meta_pairs(["owner=bob", "score.sts_spearman=0.9", "score.recall=0.7"]),
    )
    meta, scores = both
    assert meta["owner"] == "bob" and meta["description"] == "distilled encoder"
    assert scores == {"sts_spearman": 0.9, "latency_regression_ms": 2.0, "recall": 0.7}


@pytest.mark.parametrize(
    "text, names",
    [
        ("- owner\n- alice\n", ["<root>", "mapping", "list"]),
        ("just text\n", ["<root>", "mapping", "str"]),
        ("owner: [alice, bob]\n", ["owner", "string", "list"]),
        ("owner:\n  name: alice\n", ["owner", "string", "dict"]),
        ("owner: yes\n", ["owner", "string", "bool"]),
        ("owner:\n", ["owner", "no value"]),
        ("version: 1.10\n", ["version", "quote it"]),
        ("1: x\n", ["1", "must be a string"]),
        ("'': x\n", ["empty key"]),
        ("scores: [0.8]\n", ["scores", "mapping"]),
        ("scores:\n  sts: high\n", ["scores.sts", "number", "'high'"]),
        ("scores:\n  sts: '0.8'\n", ["scores.sts", "number", "text"]),
        ("scores:\n  sts: .nan\n", ["scores.sts", "finite"]),
        ("scores:\n  sts: .inf\n", ["scores.sts", "finite"]),
        ("scores:\n  sts: true\n", ["scores.sts", "number"]),
        ("scores:\n  sts:\n", ["scores.sts", "number"]),
        (f"scores:\n  sts: {10**400}\n", ["scores.sts", "finite"]),
        ("owner: [unclosed\n", ["<root>", "YAML"]),
    ],
)
def test_a_bad_release_file_is_refused_naming_the_field(text: str, names: list[str]) -> None:
    with pytest.raises(MetadataError) as err:
        parse_release_file(text, "models/enc/release.yaml")
    message = str(err.value)
    assert message.startswith("models/enc/release.yaml: ")
    for name in names:
        assert name in message


@pytest.mark.parametrize(
    "pair, names",
    [
        ("owner", ["'owner'", "key=value"]),
        ("=bob", ["'=bob'", "empty key"]),
        ("  =bob", ["empty key"]),
        ("score.=1", ["'score.=1'", "score name", "empty key"]),
        ("score.sts=high", ["score 'sts'", "number", "'high'"]),
        ("score.sts=nan", ["score 'sts'", "finite"]),
        ("score.sts=-inf", ["score 'sts'", "finite"]),
        ("score.sts=", ["score 'sts'", "number"]),
        ("scores=1", ["scores", "score.NAME=NUMBER"]),
    ],
)
def test_a_bad_pair_is_refused_naming_it(pair: str, names: list[str]) -> None:
    with pytest.raises(MetadataError) as err:
        parse_meta_pairs(["owner=alice", pair])
    for name in names:
        assert name in str(err.value)


def test_metadata_errors_are_value_errors() -> None:
    assert issubclass(MetadataError, ValueError)


REQUEST = ReleaseRequest(
    id="r-7",
    app="embed",
    version="v3",
    model="hf:acme/encoder",
    actor="alice",
    requested_at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
    meta={"owner": "alice"},
    scores={"sts": 0.8},
)


def test_a_release_request_survives_its_json() -> None:
    doc = REQUEST.to_json()
    assert doc["requested_at"] == "2026-03-02T12:00:00+00:00"
    assert ReleaseRequest.from_json(doc) == REQUEST
    bare = {k: v for k, v in doc.items() if k not in ("meta", "scores")}
    assert ReleaseRequest.from_json(bare).meta == {}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"id": None}, "id"),
        ({"app": ""}, "app"),
        ({"model": 3}, "model"),
        ({"requested_at": "2026-03-02T12:00:00"}, "requested_at"),
        ({"requested_at": "yesterday"}, "requested_at"),
        ({"requested_at": 1767225600}, "requested_at"),
        ({"meta": ["owner"]}, "meta"),
        ({"meta": {"owner": 1}}, "meta.owner"),
        ({"scores": {"sts": "high"}}, "scores.sts"),
        ({"scores": {"sts": True}}, "scores.sts"),
        ({"scores": {"sts": float("inf")}}, "scores.sts"),
    ],
)
def test_a_bad_release_request_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    doc = {**REQUEST.to_json(), **change}
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        ReleaseRequest.from_json(doc)


@pytest.mark.parametrize("field", ["id", "actor", "requested_at"])
def test_a_release_request_without_a_field_is_refused_naming_it(field: str) -> None:
    doc = {k: v for k, v in REQUEST.to_json().items() if k != field}
    with pytest.raises(ValueError, match=f"{field}: missing"):
        ReleaseRequest.from_json(doc)


def test_a_release_request_needs_a_time_zone() -> None:
    with pytest.raises(ValueError, match="requested_at"):
        ReleaseRequest(**{**REQUEST.__dict__, "requested_at": datetime(2026, 3, 2)})
