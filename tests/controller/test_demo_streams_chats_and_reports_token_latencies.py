"""The demo finds the governed chat app of the Serve config, sizes its chats from the trace,
and reports what the streaming clients measured against the SLO's token targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from controller.config import SLO, load_config
from controller.demo.load import ChatTraceLoad
from controller.demo.report import generation_summary
from controller.demo.run import _chat_app

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_configs_have_a_governed_chat_app_at_its_prefix() -> None:
    serve = yaml.safe_load((REPO / "configs/serve.local.yaml").read_text())
    config = load_config(REPO / "configs/governor.local.yaml")
    chat = _chat_app(serve, config, "http://127.0.0.1:8000")
    assert chat is not None
    assert (chat.name, chat.url, chat.model) == ("chat", "http://127.0.0.1:8000/chat", "tiny-chat")
    slo = config.app("chat").slo
    assert slo.ttft_p95_ms is not None and slo.tpot_p95_ms is not None


def test_an_ungoverned_generation_app_gets_no_chats() -> None:
    serve = yaml.safe_load((REPO / "configs/serve.local.yaml").read_text())
    config = load_config(REPO / "configs/governor.local.yaml")
    only_embeddings = config.model_copy(update={"applications": config.applications[:1]})
    assert _chat_app(serve, only_embeddings, "http://h") is None


def test_chats_carry_the_trace_rows_prompt_and_output_sizes_within_the_caps() -> None:
    load = ChatTraceLoad(
        "http://h/chat", "tiny-chat", rate_scale=0.01, max_words=64, max_output=256
    )
    trace = load.trace
    assert len(load.requests) == len(trace) > 0
    outputs = np.array([r.output_tokens for r in load.requests])
    assert outputs.max() <= 256 and outputs.min() >= 1
    assert np.array_equal(outputs, np.clip(trace.output_tokens, 1, 256))
    assert max(r.prompt_tokens for r in load.requests) <= 64


def test_the_report_gives_token_p95s_and_the_share_within_each_target() -> None:
    slo = SLO(latency_p95_ms=10_000, ttft_p95_ms=100, tpot_p95_ms=20)
    ttft = [float(x) for x in range(1, 201)]  # 1..200 ms: half within 100
    tpot = [10.0] * 19 + [30.0]
    got = generation_summary("chat", slo, ttft, tpot, answered=200, failed=3, shed=2)
    assert got["requests"] == 203 and got["failed_requests"] == 3 and got["shed_requests"] == 2
    assert got["ttft_p95_ms"] == 190.0 and got["slo_ttft_p95_ms"] == 100
    assert got["ttft_within_slo"] == pytest.approx(0.5)
    assert got["tpot_p95_ms"] == 10.0 and got["tpot_within_slo"] == pytest.approx(0.95)
