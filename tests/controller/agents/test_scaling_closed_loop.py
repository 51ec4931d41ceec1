"""The scaling agent in a closed loop over a queueing-like world with a hand-moved clock."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.config import GovernorConfig
from controller.decide import decide
from controller.decisions import ReplicaProposal
from controller.snapshot import Snapshot
from tests.controller.fleet import T0, Loop, app_doc, make_config, snapshot, version


def one_version(min_replicas: int = 1, **scaling: Any) -> GovernorConfig:
    """One app with one version seeded at 50 req/s per replica; scaling knobs overridden."""
    knobs = {"capacity_rps_per_replica": 50.0, "downscale_delay_s": 60} | scaling
    return make_config(
        app_doc(versions=("v1",), min_replicas=min_replicas, max_replicas=20, scaling=knobs)
    )


@dataclass
class LoadWorld:
    """Offered load `rate(t)` on replicas that each serve `capacity` req/s.

    Below capacity p95 = base / (1 - utilization); above it the excess waits in a backlog
    whose wait adds to the p95, and the replicas answer at their full rate.
    """

    rate: Callable[[float], float]
    capacity: float = 50.0
    base_ms: float = 40.0
    backlog: float = 0.0

    def __call__(self, loop: Loop) -> Snapshot:
        """The last interval as the signal source would report it."""
        offered = self.rate((loop.now - T0).total_seconds())
        n = loop.replicas[("embed", "v1")]
        serve = n * self.capacity
        self.backlog = max(0.0, self.backlog + (offered - serve) * loop.interval_s)
        answered = serve if self.backlog > 0 else offered
        rho = min(offered / serve, 1.0) if serve else 1.0
        wait_ms = 1000 * self.backlog / serve if serve else 0.0
        p95 = self.base_ms / max(1 - rho, 0.05) + wait_ms
        v = version(
            "embed", "v1", n, rate=answered, p95_ms=p95 if answered else None,
            queue_length=answered * self.base_ms / 1000 + self.backlog,
            request_count=answered * 30,
        )
        return snapshot(v, weights={"v1": 100})


def replicas(loop: Loop) -> int:
    """The replicas the loop runs now."""
    return loop.replicas[("embed", "v1")]


def last_reason(loop: Loop) -> str:
    """The scaling agent's reason at the last tick."""
    (p,) = [x for x in loop.history[-1].proposals
            if isinstance(x, ReplicaProposal) and x.agent == "scaling"]
    return p.reason


def step_load(t: float) -> float:
    """60 req/s, 150 from 60 s to 600 s, then 60 again."""
    return 150.0 if 60 <= t < 600 else 60.0


def test_a_load_step_scales_up_at_once_and_back_down_step_by_step() -> None:
    loop = Loop(one_version(burst_memory_s=600), LoadWorld(step_load))
    loop.replicas[("embed", "v1")] = 2
    loop.run(60)
    assert replicas(loop) == 2, "60 req/s at 35 planned per replica"
    loop.tick()
    assert replicas(loop) > 2, "the tick that sees the step scales up"
    assert "> SLO 200 ms" in last_reason(loop)
    loop.run(535)
    assert replicas(loop) == 5, "150 req/s at 35 planned per replica: ceil(4.29)"
    drops: list[tuple[float, int]] = []
    last = replicas(loop)
    for _ in range(180):
        at = (loop.now - T0).total_seconds()
        loop.tick()
        assert replicas(loop) >= last - 1, "at most one replica down per step"
        if replicas(loop) < last:
            drops.append((at, replicas(loop)))
        last = replicas(loop)
    assert drops and drops[0][0] >= 600 + 60, "no scale-down before the delay"
    assert all(b[0] - a[0] >= 60 for a, b in itertools.pairwise(drops)), drops
    assert last == 2


def test_head_room_keeps_replicas_for_a_rise_history_remembers() -> None:
    loop = Loop(one_version(burst_memory_s=3600), LoadWorld(step_load))
    loop.replicas[("embed", "v1")] = 2
    loop.run(1500)
    # 60 req/s needs 2; a start-up after a moment like now demand once reached 150 req/s,
    # 3 replicas at their full 50.
    assert replicas(loop) == 3
    assert "head-room: 99% of the moments with demand <= 1.20 units/s" in last_reason(loop)


def test_no_flapping_under_noisy_steady_load() -> None:
    rng = random.Random(7)
    noise = {int(t): 100 * (1 + rng.uniform(-0.15, 0.15)) for t in range(0, 4000, 5)}
    # The seed the world bears out: its p95 reaches the SLO at 40 req/s per replica.
    config = one_version(capacity_rps_per_replica=40.0)
    loop = Loop(config, LoadWorld(lambda t: noise[int(t)], capacity=40.0))
    loop.replicas[("embed", "v1")] = 4
    loop.run(60)
    settled = replicas(loop)
    counts = [loop.tick().plan.replicas_for("embed", "v1") for _ in range(600)]
    changes = sum(1 for a, b in itertools.pairwise([settled, *counts]) if a != b)
    assert changes <= 2, f"{changes} replica changes in 50 minutes of steady load"


def test_an_overstated_seed_is_cut_by_a_breach_and_probed_at_most_once_per_half_life() -> None:
    rng = random.Random(7)
    noise = {int(t): 100 * (1 + rng.uniform(-0.15, 0.15)) for t in range(0, 4000, 5)}
    # Seeded at 50 req/s per replica; the world's p95 reaches the SLO at 40.
    loop = Loop(one_version(capacity_half_life_s=1800),
                LoadWorld(lambda t: noise[int(t)], capacity=40.0))
    loop.replicas[("embed", "v1")] = 4
    loop.run(60)
    counts = [loop.tick().plan.replicas_for("embed", "v1") for _ in range(600)]
    downs = sum(1 for a, b in itertools.pairwise(counts)
                if a is not None and b is not None and b < a)
    assert downs <= 3000 // 1800 + 1, counts
    assert counts[-1] == 4, "the breach re-learns the knee and the fleet returns"
    kept = loop.states["scaling"]["versions"]["embed/v1"]
    assert kept["capacity_kind"] == "measured" and kept["capacity"] < 1.0


def test_a_restarted_daemon_decides_as_the_running_one() -> None:
    loop = Loop(one_version(), LoadWorld(step_load))
    loop.replicas[("embed", "v1")] = 2
    loop.run(300)
    snap = loop.observe(loop)
    running = decide(snap, loop.states, loop.config)
    restored = json.loads(json.dumps(loop.states))
    assert decide(snap, restored, loop.config).plan == running.plan


def test_scale_to_zero_after_the_idle_period_and_back_on_arrivals() -> None:
    config = one_version(min_replicas=0, scale_to_zero=True, idle_before_zero_s=60)
    loop = Loop(config, LoadWorld(lambda t: 0.0 if t < 120 else 30.0))
    loop.replicas[("embed", "v1")] = 2
    loop.run(55)
    assert replicas(loop) >= 1
    loop.run(10)
    assert replicas(loop) == 0
    loop.run(55)
    assert replicas(loop) == 0
    loop.tick()
    # Nothing is answered at zero replicas: the 150 requests waiting start one at once.
    assert replicas(loop) == 1
    assert last_reason(loop) == (
        "requests arrived at zero replicas (rate 0.0/s, queue 150): start 1 now"
    )
