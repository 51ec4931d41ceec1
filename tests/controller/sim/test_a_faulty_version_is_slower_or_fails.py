"""A version made worse than its profile: slower by a factor, or answering with errors."""

from __future__ import annotations

import numpy as np
import pytest

from controller.sim.capacity import EPOCH
from controller.sim.engine import SimSettings, VersionFault, simulate
from controller.sim.errors import SimInputError
from controller.sim.policies.static import StaticPolicy
from controller.sim.trace import Trace
from tests.controller.sim import world


def spaced(n: int, gap_s: float = 1.0) -> Trace:
    times = np.arange(n, dtype=float) * gap_s
    return Trace(times, np.full(n, 1000), np.full(n, 11), EPOCH)


def test_a_slowed_generation_version_takes_each_step_that_much_longer() -> None:
    profile = world.generation(prefill_ms_per_token=0.1, step_ms=10.0)
    settings = SimSettings(faults={"v1": VersionFault(slowdown=1.5)})
    result = simulate(spaced(1), profile, world.app(slo_ms=10_000), StaticPolicy(1), settings)
    assert result.first_token_s[0] == pytest.approx(1.5 * 0.1)
    assert result.done_s[0] == pytest.approx(1.5 * (0.1 + 10 * 0.010))


def test_a_slowed_encoder_serves_that_much_fewer_per_second() -> None:
    profile = world.encoder(service_ms=100.0)
    assert profile.slowed(2.0).batch_time_s(1, 10) == pytest.approx(0.2)
    assert profile.slowed(1.0) is profile
    with pytest.raises(SimInputError, match="positive and finite"):
        profile.slowed(0.0)


def test_errors_are_drawn_at_the_rate_and_counted_as_the_router_counts_them() -> None:
    profile = world.encoder(service_ms=1.0)
    n = 4000
    faulty = SimSettings(seed=3, faults={"v1": VersionFault(error_rate=0.02)})
    result = simulate(spaced(n, 0.01), profile, world.app(), StaticPolicy(1), faulty)
    counters = result.obs.samples["v1"][-1]
    assert counters.requests == n
    assert 0.01 * n < counters.errors < 0.03 * n
    healthy = simulate(spaced(n, 0.01), profile, world.app(), StaticPolicy(1))
    assert healthy.obs.samples["v1"][-1].errors == 0
