"""The embedded source keeps a few readings of the counters, never the scrapes behind them.

What it holds between ticks is bounded by the fleet, not by how often the fleet is
scraped, and increases are still taken over (about) one window.
"""

from __future__ import annotations

import gc
import sys
import types
from datetime import UTC, datetime

import pytest

from controller.config import GovernorConfig
from controller.signals.counters import CHECKPOINTS_PER_WINDOW
from controller.signals.embedded import EmbeddedSource
from controller.sim.recorded_fleet import dashboard_transport_for, fleet_config, metrics_texts_for
from controller.transports.ray_dashboard import RayDashboardClient
from tests.controller.clock import ManualClock

COLLABORATORS = {"config", "dashboard", "read_metrics", "clock"}
"""What the source is given rather than keeps: its config and transports."""


def held(source: EmbeddedSource) -> tuple[int, int]:
    """Bytes of what the source keeps of its own between ticks, and its longest string."""
    stack = [value for name, value in vars(source).items() if name not in COLLABORATORS]
    seen: set[int] = set()
    size = longest = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        if isinstance(obj, str):
            longest = max(longest, len(obj))
        stack.extend(gc.get_referents(obj))
    return size, longest


def scraped(config: GovernorConfig, scrapes: int) -> EmbeddedSource:
    """A source that observed the recorded fleet `scrapes` times, `interval_s` apart."""
    clock, index = ManualClock(datetime(2026, 1, 1, tzinfo=UTC)), [0]
    dashboard = RayDashboardClient(
        "http://dash", transport=dashboard_transport_for(config, 1), token=""
    )
    source = EmbeddedSource(
        config, dashboard, lambda: metrics_texts_for(config, 1, index[0], nodes=2), clock
    )
    for i in range(scrapes):
        index[0] = i
        source.observe()
        clock.advance(config.interval_s)
    return source


@pytest.mark.parametrize("interval_s", [1.0, 5.0])
def test_what_the_source_holds_does_not_grow_with_the_scrapes(interval_s: float) -> None:
    config = fleet_config(40, interval_s=interval_s, window_s=30)
    one_reading, _ = held(scraped(config, 1))
    many_size, longest = held(scraped(config, round(200 / interval_s)))
    assert many_size <= (CHECKPOINTS_PER_WINDOW + 2) * one_reading
    assert longest < 200, "a scrape's text (or a piece of one) is kept"


@pytest.mark.parametrize("interval_s", [1.0, 5.0, 7.0, 10.0])
def test_increases_are_taken_over_one_window_and_little_more(interval_s: float) -> None:
    window_s = 30.0
    config = fleet_config(2, interval_s=interval_s, window_s=window_s)
    clock, index = ManualClock(datetime(2026, 1, 1, tzinfo=UTC)), [0]
    dashboard = RayDashboardClient(
        "http://dash", transport=dashboard_transport_for(config, 1), token=""
    )
    source = EmbeddedSource(
        config, dashboard, lambda: metrics_texts_for(config, 1, index[0]), clock
    )
    for i in range(round(120 / interval_s)):
        index[0] = i
        v1 = source.observe().version("app-00001", "v1")
        clock.advance(interval_s)
        assert v1 is not None
        if i * interval_s < window_s:
            continue
        assert v1.request_rate is not None and v1.request_count is not None
        seconds = v1.request_count / v1.request_rate
        longest = window_s + window_s / CHECKPOINTS_PER_WINDOW + interval_s
        assert window_s - 1e-9 <= seconds < longest
