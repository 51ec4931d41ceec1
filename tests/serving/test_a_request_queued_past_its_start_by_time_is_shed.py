"""A request still queued at a version past its start-by time is dropped from its batch and
shed with 503 and Retry-After: answered latency stays within the wait bound plus a batch."""

from __future__ import annotations

import time

import pytest
from ray.exceptions import RayTaskError

from serving.errors import QueueWaitExceededError
from serving.model import _all_started, _check_in_time, _in_time
from serving.router import OVERLOADED, unavailable_error


def test_only_inputs_still_in_time_enter_the_batch() -> None:
    now = time.time()
    items = [("late", now - 0.1), ("in time", now + 10), ("no limit", None), ("later", now - 5)]
    assert _in_time(items) == [1, 2]


def test_a_request_with_a_dropped_input_is_refused_whole() -> None:
    assert _all_started([1, 2], None) == [1, 2]
    with pytest.raises(QueueWaitExceededError, match="past its start-by time"):
        _all_started([1, None], time.time() - 0.2)


def test_a_request_arriving_late_at_the_replica_is_not_computed() -> None:
    _check_in_time(None)
    _check_in_time(time.time() + 5)
    with pytest.raises(QueueWaitExceededError):
        _check_in_time(time.time() - 0.01)


def test_the_router_sheds_it_as_overload_even_wrapped_by_ray() -> None:
    try:
        raise QueueWaitExceededError("still queued 120 ms past its start-by time")
    except QueueWaitExceededError as cause:
        wrapped = RayTaskError("embed", "traceback", cause).as_instanceof_cause()
    error = unavailable_error(wrapped, "v2")
    assert error is not None and error.status == 503 and error.code == OVERLOADED
    assert error.shed and error.retry_after == "1"
