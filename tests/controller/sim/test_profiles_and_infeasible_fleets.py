"""Profiles: the shipped ones load, curves interpolate, and an infeasible SLO is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.sim.errors import InfeasibleError, SimInputError
from controller.sim.profile import load_profile, parse_profile
from controller.sim.slo import check_feasible
from controller.sim.trace import repo_root
from tests.controller.sim import world

PROFILES = sorted((repo_root() / "configs" / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_shipped_profile_loads_and_names_its_source(path: Path) -> None:
    profile = load_profile(path)
    assert profile.source.strip()
    latency, ttft, _ = profile.alone_times_s(1000, 100)
    assert 0 < ttft <= latency


def test_the_minilm_profile_uses_the_measured_curve() -> None:
    profile = load_profile(repo_root() / "configs/profiles/minilm-cpu.yaml")
    enc = profile.encoder
    assert enc is not None and enc.reference_tokens is not None
    at_reference = enc.reference_tokens
    # 51 seq/s at batch 1, 88 at 8, 88 at 32, 92 at 64 (benchmarks/encoder_profile.py).
    assert profile.batch_time_s(1, at_reference) == pytest.approx(1 / 51)
    assert profile.batch_time_s(8, at_reference) == pytest.approx(8 / 88)
    assert profile.batch_time_s(64, at_reference) == pytest.approx(64 / 92)
    # Between measured sizes: linear in log2(batch); beyond the last: flat.
    assert profile.batch_time_s(16, at_reference) == pytest.approx(16 / 88)
    assert profile.batch_time_s(128, at_reference) == pytest.approx(128 / 92)
    # Inputs are truncated at max_tokens.
    assert profile.batch_time_s(1, 10_000) == profile.batch_time_s(1, 256)


def test_a_profile_missing_its_kind_section_is_refused_with_the_field() -> None:
    with pytest.raises(SimInputError, match="generation"):
        parse_profile({"name": "x", "kind": "generation", "model": "m", "hardware": "h",
                       "source": "s", "startup_s": 1, "serving": {"max_batch_size": 1}}, "p.yaml")
    with pytest.raises(SimInputError, match=r"p\.yaml: serving"):
        parse_profile({"name": "x", "kind": "encoder", "model": "m", "hardware": "h",
                       "source": "s", "startup_s": 1, "encoder": {"throughput_seq_per_s": {1: 1}}},
                      "p.yaml")


def test_an_slo_below_one_requests_service_time_is_refused_as_infeasible() -> None:
    with pytest.raises(InfeasibleError, match=r"infeasible.*100\.0 ms latency.*SLO of 50\.0 ms"):
        check_feasible(world.app(slo_ms=50.0), world.encoder(service_ms=100.0), 10, 1)
    check_feasible(world.app(slo_ms=150.0), world.encoder(service_ms=100.0), 10, 1)


def test_a_generation_slo_is_checked_on_first_token_and_per_token_time() -> None:
    profile = world.generation(prefill_ms_per_token=0.1, step_ms=10.0)
    app = world.app(slo_ms=60_000.0, ttft_p95_ms=50.0, tpot_p95_ms=50.0)
    with pytest.raises(InfeasibleError, match="time to first token"):
        check_feasible(app, profile, 1000, 100)
    with pytest.raises(InfeasibleError, match="time per output token"):
        check_feasible(world.app(slo_ms=60_000.0, tpot_p95_ms=5.0), profile, 100, 100)
