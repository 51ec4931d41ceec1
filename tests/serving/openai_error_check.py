"""A schemathesis check, loaded through SCHEMATHESIS_HOOKS: every error body is OpenAI's.

OpenAI's error format is `{"error": {"message", "type", "param", "code"}}`; clients of
OpenAI's API parse exactly that, so an answer with any other shape is a failure.
"""

from __future__ import annotations

import schemathesis
from schemathesis import Case, CheckContext, Response

ERROR_FIELDS = {"message", "type", "param", "code"}
ERROR_TYPES = {"invalid_request_error", "server_error"}


@schemathesis.check
def openai_error_body(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Fail unless an error answer's body is exactly an OpenAI error object."""
    if response.status_code < 400:
        return None
    body = response.json()
    if not isinstance(body, dict) or set(body) != {"error"}:
        raise AssertionError(f"error body is not {{'error': ...}}: {body!r}")
    error = body["error"]
    if not isinstance(error, dict) or set(error) != ERROR_FIELDS:
        raise AssertionError(
            f"error object does not have exactly {sorted(ERROR_FIELDS)}: {error!r}"
        )
    if not isinstance(error["message"], str) or error["type"] not in ERROR_TYPES:
        raise AssertionError(f"error message or type is not OpenAI's: {error!r}")
    return True
