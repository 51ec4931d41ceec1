"""An application's snapshot from the embedded source does not depend on the rest of the fleet.

The reference is the same source configured with that one application, reading the same
scrapes (every application's series, and those of one that is not governed) and the same
Serve status: what a straightforward read of that application's series says.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.config import GovernorConfig, parse_config
from controller.signals.embedded import EmbeddedSource
from controller.sim.recorded_fleet import dashboard_transport_for, fleet_config, metrics_texts_for
from controller.snapshot import Snapshot
from controller.transports.ray_dashboard import RayDashboardClient
from tests.controller.clock import ManualClock

START = datetime(2026, 1, 1, tzinfo=UTC)
NOT_GOVERNED = parse_config(
    {
        "applications": [
            {
                "name": "zz-not-governed",
                "slo": {"latency_p95_ms": 300},
                "versions": [{"name": "v1", "deployment": "zz_v1"}],
            }
        ]
    }
)


def alone(config: GovernorConfig, app: str) -> GovernorConfig:
    """The same config governing only `app`."""
    return config.model_copy(update={"applications": [config.app(app)]})


class Scrapes:
    """The fleet's exporters, plus those of an application nobody governs, at one scrape."""

    def __init__(self, config: GovernorConfig, seed: int, nodes: int) -> None:
        self.config, self.seed, self.nodes = config, seed, nodes
        self.index = 1

    def __call__(self) -> list[str]:
        return [
            *metrics_texts_for(self.config, self.seed, self.index, self.nodes),
            *metrics_texts_for(NOT_GOVERNED, self.seed, self.index),
        ]


def sources(
    config: GovernorConfig, apps: Sequence[str], seed: int, nodes: int
) -> tuple[ManualClock, Scrapes, EmbeddedSource, dict[str, EmbeddedSource]]:
    clock, scrapes = ManualClock(START), Scrapes(config, seed, nodes)

    def source(c: GovernorConfig) -> EmbeddedSource:
        dashboard = RayDashboardClient(
            "http://dash", transport=dashboard_transport_for(config, seed), token=""
        )
        return EmbeddedSource(c, dashboard, scrapes, clock)

    return clock, scrapes, source(config), {a: source(alone(config, a)) for a in apps}


def assert_each_app_reads_as_if_alone(
    config: GovernorConfig, apps: Sequence[str], seed: int, nodes: int, scrapes: int
) -> list[Snapshot]:
    clock, texts, fleet_source, references = sources(config, apps, seed, nodes)
    seen = []
    for index in range(1, scrapes + 1):
        texts.index = index
        fleet = fleet_source.observe()
        assert fleet.problems == ()
        for name, reference in references.items():
            alone_snap = reference.observe()
            assert fleet.app(name) == alone_snap.app(name), (name, index)
        seen.append(fleet)
        clock.advance(config.interval_s)
    return seen


def test_each_application_of_a_large_scraped_fleet_reads_as_it_would_alone() -> None:
    config = fleet_config(400)
    sample = [a.name for a in config.applications[::67]]
    snaps = assert_each_app_reads_as_if_alone(config, sample, seed=11, nodes=3, scrapes=3)
    last = snaps[-1]
    assert len(last.apps) == 400
    rates = [v.request_rate for a in last.apps for v in a.versions]
    assert all(r is not None for r in rates) and sum(r > 0 for r in rates if r) > 400


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    apps=st.integers(1, 4),
    versions=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    nodes=st.integers(1, 3),
)
def test_any_small_fleet_reads_each_application_as_it_would_alone(
    apps: int, versions: int, seed: int, nodes: int
) -> None:
    config = fleet_config(apps, versions)
    names = [a.name for a in config.applications]
    assert_each_app_reads_as_if_alone(config, names, seed, nodes, scrapes=3)
