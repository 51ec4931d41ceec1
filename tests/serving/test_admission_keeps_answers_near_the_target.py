"""A router's admission keeps each version's in-flight count at what it answers within
the target latency, and sheds the rest at once."""

from __future__ import annotations

import heapq
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.admission import (
    CEILING,
    FLOOR,
    FORGET_AFTER_TARGETS,
    REFUSED_CUT,
    Admission,
    LatencyLimit,
)
from serving.errors import AdmissionRefusedError
from serving.router import OVERLOADED, unavailable_error


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_requests_beyond_the_limit_are_refused_naming_the_version_and_target() -> None:
    admission = Admission(target_ms=300, initial_limit=2, clock=Clock(), floor=1)
    admission.admit("v1")
    admission.admit("v1")
    with pytest.raises(AdmissionRefusedError, match=r"^2 requests in flight.*300 ms$"):
        admission.admit("v1")
    admission.admit("v2")  # each version has its own limit


def test_until_an_answer_comes_late_a_burst_is_admitted_whole() -> None:
    admission = Admission(target_ms=300, clock=Clock())
    for _ in range(CEILING):
        admission.admit("v1")
    with pytest.raises(AdmissionRefusedError):
        admission.admit("v1")


def test_a_refused_request_is_a_503_overloaded_with_the_reason() -> None:
    error = unavailable_error(AdmissionRefusedError("9 requests in flight from this router"), "v1")
    assert error is not None and error.shed and error.code == OVERLOADED
    assert error.status == 503
    assert error.message.startswith("version v1 is overloaded: 9 requests in flight")


def test_without_a_target_nothing_is_refused_or_tracked() -> None:
    admission = Admission(target_ms=None, initial_limit=1, clock=Clock())
    for _ in range(100):
        assert admission.admit("v1") is None
    assert admission.snapshot() == {}


def test_answers_within_the_target_raise_a_limit_in_use() -> None:
    clock = Clock()
    limit = LatencyLimit(target_s=0.3, limit=4.0, clock=clock, floor=1)
    started = [limit.try_admit() for _ in range(4)]
    clock.now = 0.1
    for admitted_at in started:
        assert admitted_at is not None
        limit.release(admitted_at, answered=True)
    # grows while at least half the limit is in flight: the first two of the four answers
    assert limit.limit == pytest.approx(4 + 1 / 4 + 1 / 4.25, rel=1e-6)
    assert limit.in_flight == 0


def test_a_limit_not_in_use_does_not_grow() -> None:
    clock = Clock()
    limit = LatencyLimit(target_s=0.3, limit=10.0, clock=clock)
    for _ in range(50):
        admitted_at = limit.try_admit()
        assert admitted_at is not None
        clock.now += 0.05
        limit.release(admitted_at, answered=True)
    assert limit.limit == 10.0


def test_a_late_answer_lowers_the_limit_to_what_is_answered_within_the_target() -> None:
    clock = Clock()
    limit = LatencyLimit(target_s=0.3, limit=20.0, clock=clock, floor=1)
    started = [limit.try_admit() for _ in range(20)]
    clock.now = 0.6  # 20 in flight answered in 0.6 s: 10 would have been answered in 0.3 s
    first, *rest = started
    assert first is not None
    limit.release(first, answered=True)
    assert limit.limit == pytest.approx(10.0)
    for n, admitted_at in enumerate(rest):  # the same congestion: the same estimate, no compounding
        assert admitted_at is not None
        clock.now = 0.6 + 0.03 * (n + 1)
        limit.release(admitted_at, answered=True)
        assert limit.limit >= min(10.0, (18 - n) * 0.3 / clock.now) - 1e-9
    assert limit.limit >= 1.0


def test_a_request_the_versions_queue_refused_halves_the_limit() -> None:
    clock = Clock()
    limit = LatencyLimit(target_s=0.3, limit=8.0, clock=clock, floor=1)
    started = [limit.try_admit() for _ in range(8)]
    clock.now = 0.01
    assert started[0] is not None and started[1] is not None
    limit.release(started[0], answered=False)
    assert limit.limit == pytest.approx(8 * REFUSED_CUT)
    limit.release(started[1], answered=False)  # admitted before the cut: the same signal
    assert limit.limit == pytest.approx(8 * REFUSED_CUT)


def test_the_limit_never_falls_below_one_default_batch() -> None:
    clock = Clock()
    limit = LatencyLimit(target_s=0.01, limit=64.0, clock=clock)
    for step in range(20):
        admitted_at = limit.try_admit()
        assert admitted_at is not None
        clock.now = step + 10.0
        limit.release(admitted_at, answered=True)
        assert limit.limit >= FLOOR
    assert [limit.try_admit() is not None for _ in range(FLOOR + 1)] == [True] * FLOOR + [False]


def test_a_failed_request_frees_its_place_without_moving_the_limit() -> None:
    admission = Admission(target_ms=100, initial_limit=1, clock=Clock(), floor=1)
    admitted_at = admission.admit("v1")
    admission.release("v1", admitted_at, "failed")
    assert admission.snapshot() == {"v1": {"limit": 1.0, "in_flight": 0}}
    admission.admit("v1")


def simulate(capacity_rps: float, offered_rps: float, target_s: float, seconds: float) -> dict:
    """Open-loop arrivals at `offered_rps` to one FIFO server of `capacity_rps`, behind an Admission."""
    clock = Clock()
    admission = Admission(target_s * 1000, initial_limit=64, clock=clock, floor=1)
    service_s = 1.0 / capacity_rps
    server_free_at = 0.0
    events: list[tuple[float, int, str, float]] = []  # (time, seq, kind, admitted_at)
    seq = 0
    for i in range(int(offered_rps * seconds)):
        heapq.heappush(events, (i / offered_rps, seq, "arrive", 0.0))
        seq += 1
    answers: list[tuple[float, float]] = []
    shed = 0
    while events:
        at, _, kind, admitted_at = heapq.heappop(events)
        clock.now = at
        if kind == "arrive":
            try:
                stamp = admission.admit("v1")
            except AdmissionRefusedError:
                shed += 1
                continue
            assert stamp is not None
            server_free_at = max(server_free_at, at) + service_s
            heapq.heappush(events, (server_free_at, seq, "done", stamp))
            seq += 1
        else:
            answers.append((at, at - admitted_at))
            admission.release("v1", admitted_at, "answered")
    # Once the first 64 admitted (the initial limit, whatever the version's speed) are
    # answered and a few round trips have passed: a cut acts once per round trip.
    adapted_at = 2 * 64 * service_s + 4 * target_s
    settled = sorted(latency for at, latency in answers if at >= adapted_at)
    return {
        "answered_rps": len(answers) / seconds,
        "p99_s": settled[math.ceil(0.99 * len(settled)) - 1],
        "shed": shed,
    }


@settings(max_examples=40, deadline=None)
@given(
    capacity_rps=st.floats(min_value=20, max_value=400),
    overload=st.floats(min_value=1.5, max_value=4.0),
    target_s=st.floats(min_value=0.1, max_value=1.0),
)
def test_under_overload_answers_stay_near_the_target_at_full_throughput(
    capacity_rps: float, overload: float, target_s: float
) -> None:
    result = simulate(capacity_rps, capacity_rps * overload, target_s, seconds=20.0)
    # One request more in flight adds one service time: the limit's step.
    assert result["p99_s"] <= 1.2 * target_s + 2 / capacity_rps
    assert result["answered_rps"] >= 0.9 * capacity_rps
    assert result["shed"] > 0


def test_below_capacity_nothing_is_shed() -> None:
    result = simulate(capacity_rps=100, offered_rps=70, target_s=0.3, seconds=20.0)
    assert result["shed"] == 0
    assert result["answered_rps"] == pytest.approx(70, rel=0.02)


def test_the_ceiling_bounds_a_limit_that_keeps_growing() -> None:
    limit = LatencyLimit(target_s=1.0, limit=CEILING - 1e-6, clock=Clock())
    admitted = [limit.try_admit() for _ in range(CEILING - 1)]
    assert all(a is not None for a in admitted)
    limit.release(0.0, answered=True)
    assert limit.limit == CEILING


def test_a_router_admits_the_sum_of_the_limits_of_the_versions_it_sends_to() -> None:
    clock = Clock()
    admission = Admission(target_ms=300, clock=clock, floor=2)
    assert admission.admits({"v1": 100, "v2": 0}) == CEILING, "nothing late yet"
    stamps = [admission.admit("v1") for _ in range(10)]
    clock.now = 0.6
    admission.release("v1", stamps[0], "answered")  # 10 in flight took 0.6 s: 5 in 0.3 s
    assert admission.admits({"v1": 100, "v2": 0}) == 5
    assert admission.admits({"v1": 50, "v2": 50}) == 5 + CEILING
    admission.limits["v1"].limit = 0.5
    assert admission.admits({"v1": 100}) == 2, "never below the floor"


def lowered_to_five(clock: Clock) -> tuple[Admission, list[float | None]]:
    """An admission whose v1 limit a late answer lowered to 5 at 0.6 s, 9 still in flight."""
    admission = Admission(target_ms=300, clock=clock, floor=2)
    stamps = [admission.admit("v1") for _ in range(10)]
    clock.now = 0.6
    admission.release("v1", stamps[0], "answered")
    assert admission.admits({"v1": 100}) == 5
    return admission, stamps[1:]


def test_a_limit_out_of_use_is_forgotten_once_nothing_was_late_for_long() -> None:
    clock = Clock()
    admission, held = lowered_to_five(clock)
    for stamp in held:
        admission.release("v1", stamp, "failed")
    clock.now += FORGET_AFTER_TARGETS * 0.3 * 0.9
    assert admission.admits({"v1": 100}) == 5, "lowered recently"
    clock.now += FORGET_AFTER_TARGETS * 0.3 * 0.2
    assert admission.admits({"v1": 100}) == CEILING, "out of use and the overload is over"


def test_a_limit_in_use_is_kept_however_long_ago_it_was_lowered() -> None:
    clock = Clock()
    admission, _ = lowered_to_five(clock)
    clock.now += FORGET_AFTER_TARGETS * 0.3 * 3
    assert admission.admits({"v1": 100}) == 5, "9 in flight: the limit is still measured"
