"""Release metadata: the fields and evaluation scores of a release, parsed and checked.

Parsing only: the caller reads the files. A `release.yaml` holds top-level string fields
and a `scores:` mapping of name -> number; `key=value` pairs (from the command line) set
fields, `score.NAME=NUMBER` a score, and override the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import yaml

SCORES = "scores"
"""The field of a release file that holds the evaluation scores."""
SCORE_PREFIX = "score."
"""A pair whose key starts with this sets a score."""

Parsed = tuple[dict[str, str], dict[str, float]]
"""(meta, scores)."""


class MetadataError(ValueError):
    """Release metadata that cannot be used; names the field."""


def parse_release_file(text: str, where: str) -> tuple[dict[str, str], dict[str, float]]:
    """(meta, scores) from a release.yaml: top-level string fields, and a `scores:` mapping of
    name -> number."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise MetadataError(f"{where}: <root>: not valid YAML: {err}") from None
    if doc is None:
        return {}, {}
    if not isinstance(doc, dict):
        raise MetadataError(
            f"{where}: <root>: release metadata must be a mapping of fields, "
            f"got {type(doc).__name__}"
        )
    meta: dict[str, str] = {}
    scores: dict[str, float] = {}
    for key, value in doc.items():
        name = _key(key, f"{where}: {key!r}")
        if name == SCORES:
            scores = _score_map(value, where)
        else:
            meta[name] = _field(value, f"{where}: {name}")
    return meta, scores


def parse_meta_pairs(pairs: Sequence[str]) -> tuple[dict[str, str], dict[str, float]]:
    """(meta, scores) from `key=value` pairs; `score.NAME=NUMBER` sets a score."""
    meta: dict[str, str] = {}
    scores: dict[str, float] = {}
    for pair in pairs:
        where = f"metadata pair {pair!r}"
        key, sep, value = pair.partition("=")
        if not sep:
            raise MetadataError(f"{where}: expected key=value")
        key = _key(key.strip(), where)
        if key.startswith(SCORE_PREFIX):
            name = _key(key[len(SCORE_PREFIX) :], f"{where}: the score name")
            scores[name] = _number(value.strip(), f"{where}: score {name!r}")
        elif key == SCORES:
            raise MetadataError(f"{where}: {SCORES}: set each score as score.NAME=NUMBER")
        else:
            meta[key] = value
    return meta, scores


def merged(file_part: Parsed, pairs_part: Parsed) -> tuple[dict[str, str], dict[str, float]]:
    """(meta, scores) of a release file with the pairs' fields and scores over it."""
    (file_meta, file_scores), (pair_meta, pair_scores) = file_part, pairs_part
    return {**file_meta, **pair_meta}, {**file_scores, **pair_scores}


def _key(key: object, where: str) -> str:
    """`key` if it is a non-empty string with no blanks around it, else MetadataError."""
    if not isinstance(key, str):
        raise MetadataError(f"{where}: a field name must be a string, got {type(key).__name__}")
    if not key.strip():
        raise MetadataError(f"{where}: empty key")
    if key != key.strip():
        raise MetadataError(f"{where}: the key {key!r} has blanks around it")
    return key


def _field(value: object, where: str) -> str:
    """A metadata field's value: a string (a whole number is taken as its digits)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None:
        raise MetadataError(f"{where}: has no value")
    if isinstance(value, Mapping | list):
        raise MetadataError(f"{where}: must be a string, got a {type(value).__name__}")
    raise MetadataError(
        f"{where}: must be a string, got {type(value).__name__} {value!r} (quote it to keep it "
        "as written)"
    )


def _score_map(value: object, where: str) -> dict[str, float]:
    """The `scores:` mapping of a release file: name -> finite number."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MetadataError(
            f"{where}: {SCORES}: must be a mapping of name -> number, got {type(value).__name__}"
        )
    out = {}
    for key, number in value.items():
        name = _key(key, f"{where}: {SCORES}.{key!r}")
        if isinstance(number, str):
            raise MetadataError(
                f"{where}: {SCORES}.{name}: must be a number, got the text {number!r}"
            )
        out[name] = _number(number, f"{where}: {SCORES}.{name}")
    return out


def _number(value: object, where: str) -> float:
    """`value` as a finite number (a number, or text that reads as one), else MetadataError."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MetadataError(f"{where}: must be a number, got {type(value).__name__} {value!r}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    except ValueError:
        raise MetadataError(f"{where}: must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise MetadataError(f"{where}: must be a finite number, got {value!r}")
    return number
