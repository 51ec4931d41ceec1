"""Time to first token and time per output token of generation versions are read as p95
by both sources, from the replicas' histograms, alike; an encoder has none and no problem."""

from __future__ import annotations

import pytest

from controller.signals import metric_names as m
from controller.signals.counters import parse_expositions
from controller.signals.prometheus import query_failures
from tests.controller.promql_names import metric_names_in
from tests.controller.signals.test_prometheus_source_reads_the_fleet import make
from tests.controller.signals.test_shed_requests_are_read_by_both_sources import (
    WINDOW_S,
    embedded_v1,
    exposition,
)

BOUNDS = ("10.0", "50.0", "100.0", "+Inf")
MODEL = 'application="embed",deployment="model_v1",replica="r1",model="m",version="v1"'


def token_histograms(ttft: tuple[float, ...], tpot: tuple[float, ...]) -> str:
    """A generation replica's cumulative TTFT and TPOT buckets."""
    lines = []
    for name, counts in (("time_to_first_token_ms", ttft), ("time_per_output_token_ms", tpot)):
        lines.append(f"# TYPE ray_governor_{name} histogram")
        lines += [
            f'ray_governor_{name}_bucket{{{MODEL},le="{le}"}} {n}'
            for le, n in zip(BOUNDS, counts, strict=True)
        ]
    return "\n".join(lines) + "\n"


def test_the_embedded_source_reads_token_latency_p95_over_the_window() -> None:
    v1 = embedded_v1(
        exposition(10, 0, {}) + token_histograms((0, 0, 0, 0), (0, 0, 0, 0)),
        # 100 sequences: TTFT all between 50 and 100 ms; TPOT all under 10 ms.
        exposition(110, 0, {}) + token_histograms((0, 0, 100, 100), (100, 100, 100, 100)),
    )
    assert v1.ttft_ms == pytest.approx(50 + 0.95 * 50)
    assert v1.tpot_ms == pytest.approx(0.95 * 10)
    assert v1.request_rate == pytest.approx(100 / WINDOW_S)


def test_an_encoder_has_no_token_latencies() -> None:
    v1 = embedded_v1(exposition(10, 0, {}), exposition(40, 0, {}))
    assert v1.ttft_ms is None and v1.tpot_ms is None


def test_token_buckets_are_summed_over_replicas() -> None:
    one = token_histograms((1, 2, 3, 3), (3, 3, 3, 3))
    counters = parse_expositions([one, one.replace('replica="r1"', 'replica="r2"')])
    bounds, counts = counters.versions[("embed", "v1")].tokens["ttft"]
    assert bounds == (10.0, 50.0, 100.0, float("inf"))
    assert list(counts) == [2, 4, 6, 6]


def test_the_prometheus_source_reads_the_same_p95s_and_buckets() -> None:
    source, fake, _ = make()
    assert metric_names_in(source.queries.token_buckets["ttft"].expr) == {m.TTFT_BUCKET}
    assert metric_names_in(source.queries.token_buckets["tpot"].expr) == {m.TPOT_BUCKET}
    v1 = {"application": "embed", "version": "v1"}
    for name, counts in (("ttft_buckets", (0, 0, 100, 100)), ("tpot_buckets", (100,) * 4)):
        fake.answers[name] = [({**v1, "le": le}, n) for le, n in zip(BOUNDS, counts, strict=True)]
    snap = source.observe()
    got, v2 = snap.version("embed", "v1"), snap.version("embed", "v2")
    assert got is not None and v2 is not None
    assert got.ttft_ms == pytest.approx(50 + 0.95 * 50)
    assert got.tpot_ms == pytest.approx(0.95 * 10)
    assert got.ttft_histogram is not None and got.ttft_histogram.total == 100
    assert v2.ttft_ms is None and v2.ttft_histogram is None
    assert query_failures(snap.problems) == []


def test_both_sources_give_the_canary_judge_the_same_token_buckets() -> None:
    embedded = embedded_v1(
        exposition(10, 0, {}) + token_histograms((0, 0, 0, 0), (0, 0, 0, 0)),
        exposition(110, 0, {}) + token_histograms((5, 40, 90, 100), (60, 100, 100, 100)),
    )
    source, fake, _ = make()
    v1 = {"application": "embed", "version": "v1"}
    for name, counts in (("ttft_buckets", (5, 40, 90, 100)), ("tpot_buckets", (60, 100, 100, 100))):
        fake.answers[name] = [({**v1, "le": le}, n) for le, n in zip(BOUNDS, counts, strict=True)]
    read = source.observe().version("embed", "v1")
    assert read is not None
    assert read.ttft_histogram == embedded.ttft_histogram
    assert read.tpot_histogram == embedded.tpot_histogram


def test_an_application_without_token_series_has_no_problem() -> None:
    source, _, _ = make()
    snap = source.observe()
    assert query_failures(snap.problems) == []
