"""An application's snapshot from the Prometheus source does not depend on the rest of the fleet.

The reference is the same source configured with that one application: the answers it is
given are the whole fleet's (as Prometheus gives when the fleet is selected whole), so its
snapshot is what a straightforward read of that application's series says. A fleet of any
size must give each application exactly that snapshot and those problem lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.config import GovernorConfig
from controller.signals.prometheus import PrometheusSource
from controller.signals.promql import MAX_LISTED_APPS, build_queries
from controller.sim.recorded_fleet import (
    RecordedPrometheus,
    fleet_config,
    prometheus_answers_for,
)
from controller.snapshot import Snapshot
from controller.transports.prometheus_api import HTTP_ERROR, QueryFailed, Sample
from tests.controller.clock import ManualClock

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NOW_S = NOW.timestamp()
FOREIGN = "zz-not-governed"


def prometheus_fleet(apps: int, versions: int = 2) -> GovernorConfig:
    return fleet_config(
        apps, versions, signals={"kind": "prometheus", "prometheus": {"max_sample_age_s": 60}}
    )


def alone(config: GovernorConfig, app: str) -> GovernorConfig:
    """The same config governing only `app`."""
    return config.model_copy(update={"applications": [config.app(app)]})


class ScriptedPrometheus:
    """Answers each query by name; some fail, some answer from an old evaluation."""

    def __init__(
        self,
        config: GovernorConfig,
        answers: dict[str, list[Sample]],
        failing: Sequence[str] = (),
        old: Sequence[str] = (),
    ) -> None:
        queries = build_queries(config.signals.prometheus, [a.name for a in config.applications])
        self.by_expr = {q.expr: q.name for q in queries.all()}
        self.answers, self.failing, self.old = answers, set(failing), set(old)

    def query(self, expr: str) -> list[Sample]:
        name = self.by_expr[expr]
        if name in self.failing:
            raise QueryFailed(HTTP_ERROR, "HTTP 500: injected")
        at = NOW_S - 300 if name in self.old else NOW_S
        return [Sample(s.labels, at, s.value) for s in self.answers.get(name, [])]

    def close(self) -> None:
        pass


def observe(config: GovernorConfig, client: Any) -> Snapshot:
    return PrometheusSource(config, ManualClock(NOW), client=client).observe()


def assert_each_app_reads_as_if_alone(
    config: GovernorConfig, fleet: Snapshot, client_for: Any, apps: Sequence[str]
) -> None:
    lines: set[str] = set()
    for name in apps:
        reference = observe(alone(config, name), client_for(alone(config, name)))
        assert fleet.app(name) == reference.app(name), name
        lines |= set(reference.problems)
    if len(apps) == len(config.applications):
        assert set(fleet.problems) == lines
    else:
        assert lines <= set(fleet.problems)


def test_each_application_of_a_large_recorded_fleet_reads_as_it_would_alone() -> None:
    config = prometheus_fleet(2000)
    answers = prometheus_answers_for(config, NOW_S, seed=3)
    fleet = observe(config, RecordedPrometheus(config, answers))
    assert fleet.problems == ()
    assert len(fleet.apps) == 2000
    served = [a for a in fleet.apps for v in a.versions if v.latency_histogram is not None]
    assert len(served) > 2000
    sample = [a.name for a in config.applications[::97]]
    assert_each_app_reads_as_if_alone(
        config, fleet, lambda c: RecordedPrometheus(c, answers), sample
    )


QUERIES = [q.name for q in build_queries(prometheus_fleet(1).signals.prometheus, ["a"]).all()]
VALUES = st.one_of(st.floats(0, 1000), st.just(math.nan))


@st.composite
def answers(draw: st.DrawFn, config: GovernorConfig) -> dict[str, list[Sample]]:
    """Random answers about the governed apps and one other: any series may be missing."""
    s = config.signals.prometheus
    by: dict[str, list[Sample]] = {name: [] for name in QUERIES}

    def maybe(query: str, labels: dict[str, str]) -> None:
        if draw(st.booleans()):
            by[query].append(Sample(labels, NOW_S, draw(VALUES)))

    apps = [(a.name, [(v.name, v.deployment) for v in a.versions]) for a in config.applications]
    apps.append((FOREIGN, [("v1", f"{FOREIGN}_v1")]))
    for app, versions in apps:
        if draw(st.booleans()):
            age = draw(st.sampled_from([0.0, 30.0, 300.0]))
            by["freshness"].append(Sample({s.app_label: app}, NOW_S, NOW_S - age))
        for version, deployment in versions:
            v = {s.app_label: app, s.version_label: version}
            d = {s.app_label: app, s.deployment_label: deployment}
            for query in ("request_rate", "error_rate", "latency_p50", "latency_p95", "weights"):
                maybe(query, v)
            for query in ("queue", "batch_size", "prompt_token_rate", "replicas"):
                maybe(query, d)
            maybe("output_token_rate", d)
            for le in draw(st.lists(st.sampled_from(["50", "100.0", "250", "+Inf"]), max_size=4)):
                maybe("latency_buckets", {**v, "le": le})
    return by


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_small_fleet_reads_each_application_as_it_would_alone(data: st.DataObject) -> None:
    config = prometheus_fleet(data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3)))
    fleet_answers = data.draw(answers(config))
    failing = data.draw(st.lists(st.sampled_from(QUERIES), max_size=2))
    old = data.draw(st.lists(st.sampled_from(QUERIES), max_size=2))

    def client_for(c: GovernorConfig) -> ScriptedPrometheus:
        return ScriptedPrometheus(c, fleet_answers, failing, old)

    fleet = observe(config, client_for(config))
    assert not any(FOREIGN in line for line in fleet.problems)
    assert_each_app_reads_as_if_alone(
        config, fleet, client_for, [a.name for a in config.applications]
    )


def test_a_fleet_selected_whole_leaves_out_the_series_of_other_applications() -> None:
    config = prometheus_fleet(MAX_LISTED_APPS + 1)
    answers = prometheus_answers_for(config, NOW_S, seed=5)
    labels = {"application": FOREIGN, "version": "v1"}
    answers["freshness"].append(Sample({"application": FOREIGN}, NOW_S, NOW_S - 3600))
    answers["request_rate"].append(Sample(labels, NOW_S, 5.0))
    fleet = observe(config, RecordedPrometheus(config, answers))
    assert fleet.problems == ()
    assert fleet.app(FOREIGN) is None
