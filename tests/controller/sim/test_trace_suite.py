"""The benchmark's trace suite: its traces in order, at a volume, fitted to the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from controller.sim.errors import SimInputError
from controller.sim.profile import load_profile
from controller.sim.shapes import SHAPE_START
from controller.sim.slo import check_feasible
from controller.sim.suite import (
    AZURE_CONV,
    MOONCAKE,
    SUITE_NAMES,
    SuiteTrace,
    default_traces_dir,
    fit_to_model,
    suite_traces,
)
from controller.sim.trace import Trace, load_trace, repo_root
from tests.controller.sim import world

SHARED = default_traces_dir()
needs_shared = pytest.mark.skipif(
    not (SHARED / AZURE_CONV).exists() or not (SHARED / MOONCAKE).exists(),
    reason="the shared traces are not present in this checkout",
)
CONTEXT = 8192


def by_name(suite: list[SuiteTrace]) -> dict[str, SuiteTrace]:
    return {s.name: s for s in suite}


@pytest.fixture(scope="module")
def generation() -> dict[str, SuiteTrace]:
    return by_name(suite_traces("generation", max_context_tokens=CONTEXT))


@needs_shared
def test_the_suite_has_its_eight_traces_in_order() -> None:
    names = [s.name for s in suite_traces("encoder")]
    assert names == ["azure-conv", "mooncake", "gamma-cv1", "gamma-cv2", "gamma-cv4", "on-off",
                     "flash-crowd", "diurnal"]
    assert tuple(names) == SUITE_NAMES


@needs_shared
def test_generated_hours_run_at_the_conversation_traces_mean_rate(
        generation: dict[str, SuiteTrace]) -> None:
    conv = generation["azure-conv"].trace
    rate = len(conv) / conv.duration_s
    assert rate == pytest.approx(5.53, abs=0.01)
    for name in ("gamma-cv1", "gamma-cv2", "on-off", "diurnal"):
        trace = generation[name].trace
        assert trace.arrival_s.max() < 3600.0
        assert len(trace) == pytest.approx(rate * 3600.0, rel=0.05), name
    # The crowd adds 9x the base rate for 120 s and 4.5x on average over the 10 s ramp.
    crowd = generation["flash-crowd"].trace
    assert len(crowd) == pytest.approx(rate * (3600.0 + 9 * 120 + 4.5 * 10), rel=0.05)
    on_off = generation["on-off"].trace
    assert (on_off.arrival_s % 300.0).max() < 120.0
    assert "seed 0" in generation["gamma-cv4"].trace.source


@needs_shared
def test_generated_tokens_are_the_conversation_traces_pairs(
        generation: dict[str, SuiteTrace]) -> None:
    conv = generation["azure-conv"].trace
    pairs = set(zip(conv.prompt_tokens.tolist(), conv.output_tokens.tolist(), strict=True))
    gamma = generation["gamma-cv2"].trace
    assert set(zip(gamma.prompt_tokens.tolist(), gamma.output_tokens.tolist(),
                   strict=True)) <= pairs


@needs_shared
def test_volume_10_gives_10_times_the_requests(generation: dict[str, SuiteTrace]) -> None:
    tenfold = by_name(suite_traces("generation", volume=10, max_context_tokens=CONTEXT))
    for name in SUITE_NAMES:
        assert len(tenfold[name].trace) == 10 * len(generation[name].trace)
        assert tenfold[name].clipped == 10 * generation[name].clipped
        assert tenfold[name].trace.source.endswith("x10 volume")
    half = by_name(suite_traces("encoder", volume=0.5))
    assert len(half["azure-conv"].trace) == pytest.approx(19366 / 2, rel=0.03)


@needs_shared
def test_clipping_leaves_no_request_longer_than_the_context(
        generation: dict[str, SuiteTrace]) -> None:
    raw = load_trace(SHARED / MOONCAKE)
    over = raw.prompt_tokens + raw.output_tokens > CONTEXT
    mooncake = generation["mooncake"]
    assert mooncake.clipped == int(over.sum()) == 2121
    fitted = mooncake.trace
    assert np.array_equal(fitted.arrival_s, raw.arrival_s)
    assert np.array_equal(fitted.output_tokens, raw.output_tokens)
    assert np.all(fitted.prompt_tokens[over] + fitted.output_tokens[over] == CONTEXT)
    assert np.array_equal(fitted.prompt_tokens[~over], raw.prompt_tokens[~over])
    for s in generation.values():
        assert np.all(s.trace.prompt_tokens + s.trace.output_tokens <= CONTEXT), s.name
    conv = load_trace(SHARED / AZURE_CONV)
    conv_over = int((conv.prompt_tokens + conv.output_tokens > CONTEXT).sum())
    assert generation["azure-conv"].clipped == conv_over == 1


@needs_shared
def test_clipped_requests_are_feasible_on_the_gpu_profile(
        generation: dict[str, SuiteTrace]) -> None:
    profile = load_profile(repo_root() / "configs/profiles/llama3-8b-h100.yaml")
    assert profile.generation is not None
    assert profile.generation.max_context_tokens == CONTEXT
    app = world.app(slo_ms=60_000.0, ttft_p95_ms=1000.0, tpot_p95_ms=50.0)
    for s in generation.values():
        longest = int(s.trace.prompt_tokens.max())
        check_feasible(app, profile, longest, CONTEXT - longest)
        check_feasible(app, profile, int(np.median(s.trace.prompt_tokens)),
                       int(np.median(s.trace.output_tokens)))


@needs_shared
def test_an_encoder_suite_keeps_the_arrivals_and_caps_the_prompts(
        generation: dict[str, SuiteTrace]) -> None:
    encoder = by_name(suite_traces("encoder", max_prompt_tokens=256))
    for name in SUITE_NAMES:
        assert np.array_equal(encoder[name].trace.arrival_s, generation[name].trace.arrival_s)
        assert encoder[name].trace.prompt_tokens.max() <= 256
    raw = load_trace(SHARED / MOONCAKE)
    assert encoder["mooncake"].clipped == int((raw.prompt_tokens > 256).sum())


def test_fit_to_model_cuts_prompts_by_hand() -> None:
    trace = Trace(arrival_s=np.array([0.0, 1.0, 2.0, 3.0]),
                  prompt_tokens=np.array([5, 9, 4, 20], dtype=np.int64),
                  output_tokens=np.array([3, 3, 12, 0], dtype=np.int64),
                  start=SHAPE_START, source="t")
    fitted, cut = fit_to_model(trace, "generation", 10)
    assert fitted.prompt_tokens.tolist() == [5, 7, 1, 10]
    assert fitted.output_tokens.tolist() == [3, 3, 9, 0]
    assert cut == 3
    fitted, cut = fit_to_model(trace, "encoder", 6)
    assert fitted.prompt_tokens.tolist() == [5, 6, 4, 6]
    assert fitted.output_tokens.tolist() == [3, 3, 12, 0]
    assert cut == 2
    assert fit_to_model(trace, "generation", None) == (trace, 0)
    with pytest.raises(SimInputError, match="at least 2"):
        fit_to_model(trace, "generation", 1)


def test_a_missing_shared_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SimInputError, match=str(tmp_path / AZURE_CONV)):
        suite_traces("generation", tmp_path)
    (tmp_path / AZURE_CONV).write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.0,374,44\n2023-11-16 18:15:56.0,396,109\n")
    with pytest.raises(SimInputError, match=f"{tmp_path / MOONCAKE}: cannot read"):
        suite_traces("generation", tmp_path)


def test_limits_for_the_other_kind_and_bad_volumes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SimInputError, match="max_context_tokens applies to generation"):
        suite_traces("encoder", tmp_path, max_context_tokens=CONTEXT)
    with pytest.raises(SimInputError, match="max_prompt_tokens applies to encoder"):
        suite_traces("generation", tmp_path, max_prompt_tokens=256)
    with pytest.raises(SimInputError, match="volume must be a positive number"):
        suite_traces("generation", tmp_path, volume=0)


def test_a_suite_from_a_tiny_folder_is_built_from_its_own_traces(tmp_path: Path) -> None:
    rows = "".join(f"2023-11-16 18:{m:02d}:00.0,{100 + m},{m + 1}\n" for m in range(60))
    (tmp_path / AZURE_CONV).write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + rows)
    (tmp_path / MOONCAKE).write_text(
        '{"timestamp": 0, "input_length": 9000, "output_length": 200}\n')
    suite = by_name(suite_traces("generation", tmp_path, seed=3, max_context_tokens=1000))
    assert suite["mooncake"].trace.prompt_tokens.tolist() == [800]
    assert suite["mooncake"].clipped == 1
    # 60 requests over 59 minutes: about one a minute for the generated hours.
    assert len(suite["gamma-cv1"].trace) == pytest.approx(61, abs=25)
    again = by_name(suite_traces("generation", tmp_path, seed=3, max_context_tokens=1000))
    assert np.array_equal(again["diurnal"].trace.arrival_s, suite["diurnal"].trace.arrival_s)
    assert suite["azure-conv"].clipped == 0
