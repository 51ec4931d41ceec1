"""Bodies the JSON parser or a tokenizer would refuse are a typed 400, found without recursion."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.errors import ApiError
from serving.http_body import (
    MAX_JSON_DEPTH,
    MAX_JSON_INT,
    MIN_JSON_INT,
    BodyLimits,
    check_depth,
    nesting_depth,
    parse_json_object,
)

LIMITS = BodyLimits(max_bytes=1_048_576)


def _refusal(raw: bytes) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_json_object(raw, LIMITS)
    assert caught.value.status == 400, caught.value.message
    return caught.value


def _nested(depth: int) -> bytes:
    return b'{"model": "m", "input": ' + b"[" * depth + b'"x"' + b"]" * depth + b"}"


REFUSED: list[tuple[str, bytes, str, str | None]] = [
    ("escaped_lone_surrogate", b'{"model": "m", "input": "\\ud800"}', "invalid_text", "input"),
    ("escaped_low_surrogate", b'{"model": "m", "input": "a\\udc00b"}', "invalid_text", "input"),
    ("surrogate_in_list", b'{"model": "m", "input": ["ok", "\\udfff"]}', "invalid_text", "input"),
    ("surrogate_in_key", b'{"\\ud800": 1}', "invalid_text", None),
    ("surrogate_nested_key", b'{"user": {"\\ud800": 1}}', "invalid_text", "user"),
    ("escaped_nul", b'{"model": "m", "input": "a\\u0000b"}', "invalid_text", "input"),
    ("nul_in_model", b'{"model": "m\\u0000", "input": "x"}', "invalid_text", "model"),
    ("raw_surrogate_bytes", b'{"model": "m", "input": "\xed\xa0\x80"}', "invalid_encoding", None),
    ("invalid_utf8", b'{"model": "m", "input": "\xff"}', "invalid_encoding", None),
    ("overlong_utf8", b'{"model": "m", "input": "\xc0\xaf"}', "invalid_encoding", None),
    ("utf16_body", '{"model": "m", "input": "x"}'.encode("utf-16"), "invalid_encoding", None),
    ("nested_3000_arrays", b"[" * 3000 + b"]" * 3000, "too_deeply_nested", None),
    ("nested_3000_objects", b'{"a":' * 3000 + b"1" + b"}" * 3000, "too_deeply_nested", None),
    ("nested_one_too_deep", _nested(MAX_JSON_DEPTH), "too_deeply_nested", None),
    ("unclosed_nesting", b"[" * 100_000, "too_deeply_nested", None),
    ("nan", b'{"model": "m", "input": "x", "temperature": NaN}', "invalid_number", None),
    ("infinity", b'{"model": "m", "input": "x", "temperature": Infinity}', "invalid_number", None),
    ("minus_infinity", b'{"model": "m", "top_p": -Infinity}', "invalid_number", None),
    ("float_overflow", b'{"model": "m", "temperature": 1e400}', "invalid_number", None),
    ("int_over_64_bits", b'{"max_tokens": %d}' % (MAX_JSON_INT + 1), "invalid_number", None),
    ("int_under_64_bits", b'{"max_tokens": %d}' % (MIN_JSON_INT - 1), "invalid_number", None),
    ("int_of_5000_digits", b'{"max_tokens": ' + b"9" * 5000 + b"}", "invalid_number", None),
    ("empty", b"  ", "invalid_json", None),
    ("not_json", b"{not json", "invalid_json", None),
    ("utf8_bom", b'\xef\xbb\xbf{"model": "m"}', "invalid_json", None),
    ("raw_control_character", b'{"model": "m\x01"}', "invalid_json", None),
    ("not_an_object", b"[1, 2]", "invalid_json", None),
]


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_refused_with_its_code(raw: bytes, code: str, param: str | None) -> None:
    error = _refusal(raw)
    assert error.code == code, error.message
    assert error.param == param
    error.message.encode("utf-8")  # the message itself can be sent


def test_limits_are_named_in_the_message() -> None:
    assert f"limit of {MAX_JSON_DEPTH}" in _refusal(_nested(MAX_JSON_DEPTH)).message
    assert "64 bits" in _refusal(b'{"seed": 99999999999999999999}').message
    assert "U+D800" in _refusal(b'{"input": "\\ud800"}').message


ACCEPTED: list[tuple[str, bytes, object]] = [
    ("deepest_allowed", _nested(MAX_JSON_DEPTH - 1), None),
    ("brackets_inside_strings", b'{"input": "' + b"[{" * 5000 + b'"}', "[{" * 5000),
    ("escaped_quotes_and_brackets", b'{"input": "\\"[[[\\\\"}', '"[[[\\'),
    ("surrogate_pair", b'{"input": "\\ud83d\\ude00"}', "\U0001f600"),
    ("raw_emoji", '{"input": "\U0001f600 \u00e9"}'.encode(), "\U0001f600 \u00e9"),
    ("largest_int", b'{"input": %d}' % MAX_JSON_INT, MAX_JSON_INT),
    ("smallest_int", b'{"input": %d}' % MIN_JSON_INT, MIN_JSON_INT),
    ("finite_float", b'{"input": 1.5e300}', 1.5e300),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [case[1:] for case in ACCEPTED],
    ids=[case[0] for case in ACCEPTED],
)
def test_accepted(raw: bytes, expected: object) -> None:
    body = parse_json_object(raw, LIMITS)
    if expected is not None:
        assert body["input"] == expected


@pytest.mark.parametrize(
    "raw",
    [
        b'"\\"' * 300_000,  # strings full of escaped quotes
        b'"' + b"[" * 1_000_000,  # one unterminated string
        b"[" * 1_000_000,  # a megabyte of nesting
        b"[]," * 300_000,  # many shallow arrays
        b"[" + b'"a[",' * 150_000 + b"1]",  # many strings holding brackets
        b'"' + b"\\\\" * 400_000 + b'"',  # a long run of backslashes
    ],
    ids=["escaped_quotes", "unterminated_string", "deep", "wide", "strings", "backslashes"],
)
def test_depth_check_of_a_megabyte_is_fast(raw: bytes) -> None:
    started = time.perf_counter()
    with contextlib.suppress(ApiError):
        check_depth(raw, MAX_JSON_DEPTH)
    assert time.perf_counter() - started < 0.5


def test_depth_is_counted_outside_strings_only() -> None:
    check_depth(json.dumps({"a": "[" * 100, "b": ["]" * 100]}).encode(), 2)
    with pytest.raises(ApiError):
        check_depth(json.dumps({"a": [[["x"]]]}).encode(), 3)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


TRICKY_TEXT = st.text(alphabet='[]{}"\\ax\u00e9\U0001f600', max_size=6)
JSON_VALUES = st.recursive(
    st.none() | st.integers() | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=500, derandomize=True, deadline=None)
@given(value=JSON_VALUES, ascii_only=st.booleans())
def test_nesting_depth_matches_the_parsed_value(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nesting_depth(raw) == _depth(value)


TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=8)
SAFE_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(MIN_JSON_INT, MAX_JSON_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=20,
)


@settings(max_examples=500, derandomize=True, deadline=None)
@given(body=st.dictionaries(TEXT, SAFE_VALUES, max_size=4), ascii_only=st.booleans())
def test_a_body_within_the_limits_parses_as_json_does(
    body: dict[str, Any], ascii_only: bool
) -> None:
    raw = json.dumps(body, ensure_ascii=ascii_only).encode()
    assert parse_json_object(raw, LIMITS) == json.loads(raw)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    before=TEXT,
    after=TEXT,
    char=st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]),
    in_key=st.booleans(),
    ascii_only=st.booleans(),
)
def test_nul_or_lone_surrogate_anywhere_is_refused(
    before: str, after: str, char: str, in_key: bool, ascii_only: bool
) -> None:
    text = before + char + after
    body = {"model": "m", "user": {text: 1}} if in_key else {"model": "m", "input": [text]}
    raw = json.dumps(body, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert _refusal(raw).code in {"invalid_text", "invalid_encoding"}
