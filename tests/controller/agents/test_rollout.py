"""The rollout agent in a closed loop: promote, roll back, hold, abort, resume."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from controller.agents.rollout import current_stable, rollout_view
from controller.config import GovernorConfig
from controller.decide import decide
from controller.decisions import ReplicaFloor, ReplicaProposal, WeightProposal
from controller.snapshot import OperatorCommand
from tests.controller.fleet import (
    T0,
    CanaryWorld,
    Loop,
    app_doc,
    fleet,
    make_config,
    snapshot,
    version,
)

APP = "embed"


def canary_config(min_replicas: int = 1, **rollout: Any) -> GovernorConfig:
    """v1 stable, v2 declared as candidate; rollout knobs overridden."""
    knobs = {"drain_s": 30, "step_min_duration_s": 30, "min_requests": 50} | rollout
    return make_config(
        app_doc(
            min_replicas=min_replicas,
            candidate="v2",
            rollout=knobs,
            scaling={"capacity_rps_per_replica": 50},
        )
    )


def view(loop: Loop) -> dict[str, Any]:
    """The rollout view of the app."""
    return rollout_view(loop.states, loop.config.app(APP))


def run_until(loop: Loop, phase: str, max_ticks: int = 400) -> None:
    """Tick until the rollout reaches `phase`."""
    for _ in range(max_ticks):
        loop.tick()
        if view(loop)["phase"] == phase:
            return
    raise AssertionError(f"never reached {phase}: {view(loop)}")


def candidate_weights(loop: Loop) -> list[int]:
    """v2's planned weight at every tick so far."""
    return [d.plan.weights_for(APP)["v2"] for d in loop.history]  # type: ignore[index]


def test_rollout_promotes_a_healthy_candidate_step_by_step() -> None:
    config = canary_config(min_replicas=0)
    loop = Loop(config, CanaryWorld())
    run_until(loop, "promoted")
    steps = [
        w
        for i, w in enumerate(candidate_weights(loop))
        if i == 0 or w != candidate_weights(loop)[i - 1]
    ]
    assert steps == [0, 5, 25, 50, 100]
    assert view(loop)["verdict"] == "pass"
    assert current_stable(loop.states, config.app(APP)) == "v2"
    assert loop.weights[APP] == {"v1": 0, "v2": 100}
    loop.run(25)
    assert loop.replicas[(APP, "v1")] >= 1, "the old stable drains before it is retired"
    loop.run(10)
    assert loop.replicas[(APP, "v1")] == 0, "then it goes to its min_replicas"
    assert loop.weights[APP] == {"v1": 0, "v2": 100}
    assert view(loop)["phase"] == "promoted"


def test_rollback_on_latency_regression() -> None:
    world = CanaryWorld(median_ms={"v1": 80.0, "v2": 160.0})
    loop = Loop(canary_config(), world)
    run_until(loop, "rolling-back")
    v = view(loop)
    assert v["verdict"] == "fail" and "latency regressed" in v["reason"]
    assert loop.history[-1].plan.weights_for(APP) == {"v1": 100, "v2": 0}, "weight 0 at once"
    assert max(candidate_weights(loop)) == 5
    assert loop.replicas[(APP, "v2")] >= 1, "the candidate drains before it is scaled down"
    run_until(loop, "rolled-back", max_ticks=20)
    loop.tick()
    assert loop.replicas[(APP, "v2")] == 1
    assert current_stable(loop.states, loop.config.app(APP)) == "v1"


def test_rollback_on_error_regression() -> None:
    world = CanaryWorld(error_rate={"v1": 0.001, "v2": 0.10})
    loop = Loop(canary_config(min_replicas=0), world)
    run_until(loop, "rolling-back")
    v = view(loop)
    assert v["verdict"] == "fail" and "error rate regressed" in v["reason"]
    assert loop.weights[APP] == {"v1": 100, "v2": 0}
    run_until(loop, "rolled-back", max_ticks=20)
    loop.tick()
    assert loop.replicas[(APP, "v2")] == 0


def test_rollback_when_the_canary_sheds_what_the_stable_serves() -> None:
    # Admission keeps the canary's answered latency at its target, so only the share it
    # refuses shows that it is slower.
    world = CanaryWorld(shed_share={"v1": 0.0, "v2": 0.3})
    loop = Loop(canary_config(min_replicas=0), world)
    run_until(loop, "rolling-back")
    v = view(loop)
    assert v["verdict"] == "fail" and "shed rate regressed" in v["reason"]
    assert loop.weights[APP] == {"v1": 100, "v2": 0}


def test_load_shed_alike_by_both_versions_does_not_fail_the_canary() -> None:
    world = CanaryWorld(shed_share={"v1": 0.2, "v2": 0.2})
    loop = Loop(canary_config(min_replicas=0), world)
    run_until(loop, "promoted")
    assert "shed canary" in view(loop)["reason"]


def test_rollback_when_the_canary_is_slower_to_first_token_only() -> None:
    # Same answers end to end, but a generation canary that keeps users waiting longer for
    # the first token: the end-to-end latency alone would promote it.
    world = CanaryWorld(
        ttft_median_ms={"v1": 100.0, "v2": 250.0}, tpot_median_ms={"v1": 20.0, "v2": 20.0}
    )
    loop = Loop(canary_config(min_replicas=0), world)
    run_until(loop, "rolling-back")
    v = view(loop)
    assert v["verdict"] == "fail" and "TTFT regressed" in v["reason"]
    assert "TPOT regressed" not in v["reason"] and "latency regressed" not in v["reason"]
    assert loop.weights[APP] == {"v1": 100, "v2": 0}


def test_rollback_when_the_canary_streams_tokens_slower() -> None:
    world = CanaryWorld(
        ttft_median_ms={"v1": 100.0, "v2": 100.0}, tpot_median_ms={"v1": 20.0, "v2": 40.0}
    )
    loop = Loop(canary_config(min_replicas=0), world)
    run_until(loop, "rolling-back")
    v = view(loop)
    assert v["verdict"] == "fail" and "TPOT regressed" in v["reason"]
    assert "TTFT regressed" not in v["reason"]


def generation_config(**slo: float) -> GovernorConfig:
    """canary_config with token targets in the SLO (a generation app)."""
    config = canary_config(min_replicas=0)
    app = config.applications[0]
    slo_now = app.slo.model_copy(update=slo)
    return config.model_copy(update={"applications": [app.model_copy(update={"slo": slo_now})]})


def test_a_generation_canary_alike_on_every_latency_is_promoted_with_token_evidence() -> None:
    world = CanaryWorld(
        ttft_median_ms={"v1": 100.0, "v2": 100.0}, tpot_median_ms={"v1": 20.0, "v2": 20.0}
    )
    loop = Loop(generation_config(ttft_p95_ms=500.0, tpot_p95_ms=50.0), world)
    run_until(loop, "promoted")
    reason = view(loop)["reason"]
    # At 100 % no stable runs beside it: the last step holds it to the SLO's targets.
    assert "TTFT canary p95" in reason and "vs SLO 500.0 ms" in reason
    assert "TPOT canary p95" in reason and "vs SLO 50.0 ms" in reason


def test_at_full_traffic_a_canary_is_held_to_the_slo_not_to_an_earlier_stable() -> None:
    # Alike while both take traffic; at 100 % the canary alone runs slower than the
    # stable did earlier (another load per replica), yet well within the SLO.
    world = CanaryWorld(
        ttft_median_ms={"v1": 100.0, "v2": 100.0}, tpot_median_ms={"v1": 20.0, "v2": 20.0}
    )
    config = generation_config(ttft_p95_ms=1000.0, tpot_p95_ms=100.0)
    loop = Loop(config, world)
    for _ in range(400):
        loop.tick()
        if view(loop)["weight"] == 100:
            world.ttft_median_ms["v2"], world.tpot_median_ms["v2"] = 200.0, 40.0
        if view(loop)["phase"] != "canary":
            break
    assert view(loop)["phase"] == "promoted", view(loop)["reason"]


def test_at_full_traffic_a_canary_over_the_slo_rolls_back() -> None:
    world = CanaryWorld(
        ttft_median_ms={"v1": 100.0, "v2": 100.0}, tpot_median_ms={"v1": 20.0, "v2": 20.0}
    )
    loop = Loop(generation_config(ttft_p95_ms=300.0, tpot_p95_ms=100.0), world)
    for _ in range(400):
        loop.tick()
        if view(loop)["weight"] == 100:
            world.ttft_median_ms["v2"] = 600.0
        if view(loop)["phase"] != "canary":
            break
    v = view(loop)
    assert v["phase"] == "rolling-back" and "TTFT regressed" in v["reason"]
    assert "vs SLO 300.0 ms" in v["reason"]


def test_at_full_traffic_a_breach_the_stable_shared_does_not_roll_back() -> None:
    # Both versions start their answers over the 300 ms target: no evidence against v2.
    world = CanaryWorld(
        ttft_median_ms={"v1": 600.0, "v2": 600.0}, tpot_median_ms={"v1": 20.0, "v2": 20.0}
    )
    loop = Loop(generation_config(ttft_p95_ms=300.0, tpot_p95_ms=100.0), world)
    run_until(loop, "promoted")
    assert "as the stable was" in view(loop)["reason"]


def test_hold_when_inconclusive() -> None:
    loop = Loop(canary_config(), CanaryWorld(rate=0.5))
    loop.run(600)
    v = view(loop)
    assert v["phase"] == "canary" and v["step"] == 0 and v["weight"] == 5
    assert v["verdict"] == "inconclusive"
    assert "canary" in v["reason"] and "/50" in v["reason"]
    assert loop.weights[APP] == {"v1": 95, "v2": 5}


def test_abort_at_deadline_when_inconclusive_too_long() -> None:
    loop = Loop(canary_config(deadline_s=120), CanaryWorld(rate=0.5))
    run_until(loop, "aborted", max_ticks=40)
    v = view(loop)
    assert v["verdict"] == "abort" and "deadline 120s" in v["reason"]
    assert loop.weights[APP] == {"v1": 100, "v2": 0}
    loop.run(300)
    assert view(loop)["phase"] == "aborted", "the same candidate does not start again"


def test_operator_abort_stops_the_rollout_at_once() -> None:
    loop = Loop(canary_config(), CanaryWorld())
    for _ in range(200):
        loop.tick()
        if view(loop)["weight"] == 25:
            break
    loop.abort(APP)
    decision = loop.tick()
    v = view(loop)
    assert v["phase"] == "aborted" and v["reason"] == "aborted by operator"
    assert decision.plan.weights_for(APP) == {"v1": 100, "v2": 0}
    loop.abort(APP)
    decision = loop.tick()
    assert any("ignored" in a.message for a in decision.plan.alerts)


def test_restart_in_the_middle_of_a_rollout_resumes_at_the_same_step() -> None:
    world = CanaryWorld()
    steady = Loop(canary_config(), world)
    restarted = Loop(canary_config(), world)
    for _ in range(200):
        steady.tick()
        restarted.tick()
        if view(restarted)["step"] == 2:
            break
    restarted.tick()
    steady.tick()
    before = view(restarted)
    json.dumps(restarted.states, allow_nan=False)
    restarted.restart()
    assert view(restarted) == before
    restarted.tick()
    steady.tick()
    assert view(restarted)["step"] == before["step"] == 2
    for _ in range(100):
        a, b = steady.tick(), restarted.tick()
        assert a.plan == b.plan
        assert view(steady) == view(restarted)
    assert view(restarted)["phase"] == "promoted"


def test_floors_keep_both_versions_up_and_the_candidate_is_sized_for_its_next_step() -> None:
    loop = Loop(canary_config(), CanaryWorld())
    loop.replicas[(APP, "v1")] = 4
    for _ in range(200):
        loop.tick()
        if view(loop)["weight"] == 25:
            break
    proposals = loop.history[-1].proposals
    floors = {p.version: p.replicas for p in proposals if isinstance(p, ReplicaFloor)}
    wishes = {
        p.version: p.replicas
        for p in proposals
        if isinstance(p, ReplicaProposal) and p.agent == "rollout"
    }
    assert floors["v1"] >= 1
    assert floors["v2"] >= 1, floors  # its current 25% of 4 replicas
    assert wishes["v2"] >= 2, wishes  # room for the next step, if the budget allows


def test_idle_app_keeps_all_traffic_on_the_stable_and_retires_other_versions() -> None:
    config = make_config(app_doc(min_replicas=0, rollout={"drain_s": 10}))
    loop = Loop(config, CanaryWorld())
    loop.replicas[(APP, "v2")] = 2
    loop.weights[APP] = {"v1": 50, "v2": 50}
    decision = loop.tick()
    (weights,) = [p for p in decision.proposals if isinstance(p, WeightProposal)]
    assert weights.weights == {"v1": 100, "v2": 0}
    assert decision.plan.replicas_for(APP, "v2") == 2, "still draining"
    loop.run(15)
    assert loop.replicas[(APP, "v2")] == 0
    assert view(loop)["phase"] == "idle"


def test_a_new_candidate_starts_after_the_last_one_finished() -> None:
    loop = Loop(canary_config(deadline_s=60), CanaryWorld(rate=0.5))
    run_until(loop, "aborted", max_ticks=40)
    doc = app_doc(candidate=None, rollout={"deadline_s": 60})
    loop.config = make_config(doc)
    loop.tick()
    assert view(loop)["phase"] == "idle"
    loop.config = make_config(app_doc(candidate="v2"))
    loop.tick()
    assert view(loop)["phase"] == "canary"


def test_a_config_that_names_another_stable_overrides_a_promotion() -> None:
    states = {
        "rollout": {"apps": {APP: {"phase": "promoted", "stable": "v2", "config_stable": "v1"}}}
    }
    assert current_stable(states, make_config(app_doc()).app(APP)) == "v2"
    edited = make_config(app_doc(versions=("v1", "v2", "v3"), stable="v3")).app(APP)
    assert current_stable(states, edited) == "v3"


def test_a_blind_tick_keeps_the_promoted_weights_and_still_takes_an_abort() -> None:
    config = canary_config()
    loop = Loop(config, CanaryWorld())
    run_until(loop, "promoted")
    blind = fleet(now=loop.now)
    assert decide(blind, loop.states, config).plan.weights_for(APP) == {"v1": 0, "v2": 100}

    loop = Loop(config, CanaryWorld())
    for _ in range(200):
        loop.tick()
        if view(loop)["weight"] == 25:
            break
    command = OperatorCommand("abort-rollout", APP, loop.now)
    decision = decide(fleet(now=loop.now, commands=[command]), loop.states, config)
    assert decision.plan.weights_for(APP) == {"v1": 100, "v2": 0}
    assert rollout_view(decision.states, config.app(APP))["phase"] == "aborted"


def test_a_retired_version_is_not_scaled_down_while_requests_are_in_flight_there() -> None:
    config = make_config(app_doc(min_replicas=0, rollout={"drain_s": 10}))
    states: dict[str, Any] = {}
    t = T0
    plans = []
    for queue in (40.0, 25.0, 3.0, 0.0, 0.0, 0.0, 0.0):
        snap = snapshot(
            version(name="v1", replicas=2),
            version(name="v2", replicas=2, rate=0.0, p95_ms=None, queue_length=queue),
            weights={"v1": 100, "v2": 0},
            now=t,
        )
        decision = decide(snap, states, config)
        states = decision.states
        plans.append(decision.plan.replicas_for(APP, "v2"))
        t += timedelta(seconds=5)
    # In flight for three ticks; retired drain_s (10 s) after the last tick that saw any.
    assert plans == [2, 2, 2, 2, 0, 0, 0], plans
