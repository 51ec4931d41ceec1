"""Reading a request body as one JSON object, within limits no model can be blamed for.

Whatever the JSON parser or a tokenizer would refuse is refused here, with a 400, before
the router chooses a version: bytes that are not UTF-8, nesting deeper than
`MAX_JSON_DEPTH`, numbers that are not finite or do not fit in 64 bits, and strings
holding NUL or a lone surrogate. The limits are stated here and nowhere else.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
from starlette.requests import Request

from serving.errors import ApiError

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted; an OpenAI request body needs 3."""
MIN_JSON_INT = -(2**63)
MAX_JSON_INT = 2**63 - 1
"""Integers must fit in a signed 64-bit integer, as in OpenAI's own API."""
REFUSED_CHARACTERS = "NUL (U+0000) or a lone surrogate (U+D800..U+DFFF)"
"""What no string of a body may hold: tokenizers refuse lone surrogates, and NUL ends
strings in the C code below many of them."""

_MAX_INT_CHARS = len(str(MIN_JSON_INT))
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN, _CLOSE = (ord("["), ord("{")), (ord("]"), ord("}"))
_REFUSED_CHARACTER = re.compile("[\x00\ud800-\udfff]")
# In strict UTF-8 JSON text, NUL and surrogates can only arrive as \u escapes, and a
# number can only leave 64 bits or overflow a float with 19 digits or a 3-digit exponent.
# Text with neither (nearly every request) skips the slower, exact checks.
_MAYBE_REFUSED_TEXT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_MAYBE_LONG_NUMBER = re.compile(r"[0-9]{19}|[eE][+-]?[0-9]{3}")


@dataclass(frozen=True)
class BodyLimits:
    """What a request body may be: its size in bytes (per application) and its nesting."""

    max_bytes: int
    max_depth: int = MAX_JSON_DEPTH

    def describe(self) -> str:
        """The limits in one sentence, for documents and error messages."""
        return (
            f"a body is one UTF-8 JSON object of at most {self.max_bytes} bytes, nested at "
            f"most {self.max_depth} deep; numbers are finite, integers fit in 64 bits, and "
            f"no string holds {REFUSED_CHARACTERS}"
        )


def _refused(message: str, code: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"request body is larger than the limit of {limit} bytes",
        code="request_too_large",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body; 413 when it (or its declared length) is over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request, limits: BodyLimits) -> dict[str, Any]:
    """Read the body within `limits` and return it as a JSON object (see `parse_json_object`)."""
    return parse_json_object(await read_body(request, limits.max_bytes), limits)


def parse_json_object(raw: bytes, limits: BodyLimits) -> dict[str, Any]:
    """The body as a JSON object; a 400 for anything the parser or a tokenizer would refuse."""
    if not raw.strip():
        raise _refused("request body is empty; send a JSON object", "invalid_json")
    text = _utf8(raw)
    check_depth(raw, limits.max_depth)
    body = _decode(text)
    if not isinstance(body, dict):
        raise _refused(
            f"request body must be a JSON object, got {type(body).__name__}", "invalid_json"
        )
    if _MAYBE_REFUSED_TEXT.search(text):
        check_strings(body)
    return body


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Python's codec also refuses surrogates encoded as bytes (ED A0 80 ...).
        raise _refused(
            f"request body is not valid UTF-8: {exc.reason} at byte {exc.start}",
            "invalid_encoding",
        ) from exc


def check_depth(raw: bytes, limit: int) -> None:
    """Refuse JSON whose arrays and objects nest deeper than `limit`, without recursion."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return  # the common case: too few brackets to nest that deep, strings or not
    if nesting_depth(raw) > limit:
        raise _refused(
            f"request body nests arrays and objects deeper than the limit of {limit}",
            "too_deeply_nested",
        )


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in UTF-8 JSON, brackets inside strings aside.

    Vectorised over the bytes (linear, a few milliseconds a megabyte): UTF-8 never puts
    an ASCII byte inside a multi-byte character, so quotes and brackets are found bytewise.
    """
    data = np.frombuffer(raw, dtype=np.uint8)
    if data.size == 0:
        return 0
    inside = np.cumsum(_unescaped_quotes(data), dtype=np.int32) % 2 == 1
    opens = np.isin(data, _OPEN).astype(np.int8)
    steps = opens - np.isin(data, _CLOSE)
    steps[inside] = 0
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def _unescaped_quotes(data: np.ndarray) -> np.ndarray:
    """Where the quotes that open or close a string are: those after an even backslash run."""
    positions = np.arange(data.size, dtype=np.int32)
    last_other = np.maximum.accumulate(np.where(data == _BACKSLASH, np.int32(-1), positions))
    backslashes_before = np.zeros(data.size, dtype=np.int32)
    backslashes_before[1:] = positions[:-1] - last_other[:-1]
    return (data == _QUOTE) & (backslashes_before % 2 == 0)


def _not_finite(constant: str) -> NoReturn:
    raise _refused(f"{constant} is not a JSON number; numbers must be finite", "invalid_number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _refused(f"number {text[:40]} is too large to be finite", "invalid_number")
    return value


def _int(text: str) -> int:
    value = int(text) if len(text) <= _MAX_INT_CHARS else None
    if value is None or not MIN_JSON_INT <= value <= MAX_JSON_INT:
        raise _refused(
            f"integer {text[:40]}{'...' if len(text) > 40 else ''} does not fit in 64 bits",
            "invalid_number",
        )
    return value


_DECODER = json.JSONDecoder(parse_constant=_not_finite)
_CHECKING_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_int, parse_constant=_not_finite)


def _decode(text: str) -> Any:
    decoder = _CHECKING_DECODER if _MAYBE_LONG_NUMBER.search(text) else _DECODER
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise _refused(f"request body is not valid JSON: {exc}", "invalid_json") from exc
    except RecursionError as exc:
        # check_depth keeps bodies far shallower than Python's recursion limit; this
        # stays a 400 should that limit ever be lower than the depth allowed.
        raise _refused("request body nests too deeply to parse", "too_deeply_nested") from exc


def check_strings(body: dict[str, Any]) -> None:
    """Refuse a body any of whose strings, keys included, holds NUL or a lone surrogate."""
    for field, value in body.items():
        pending: list[Any] = [field, value]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                _check_string(item, field)
            elif isinstance(item, list):
                pending.extend(item)
            elif isinstance(item, dict):
                pending.extend(item)
                pending.extend(item.values())


def _check_string(text: str, field: str) -> None:
    found = _REFUSED_CHARACTER.search(text)
    if found is None:
        return
    char = found.group()
    what = "a NUL character" if char == "\x00" else "a lone surrogate, which is not a character"
    param = field if _REFUSED_CHARACTER.search(field) is None else None
    raise _refused(
        f"{param or 'a field name'} holds {what} (U+{ord(char):04X}); strings may not hold "
        f"{REFUSED_CHARACTERS}",
        "invalid_text",
        param=param,
    )
