"""`governor simulate`: a table per policy, the JSON shape, the plot, and bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from controller.sim.command import simulate

KEYS = {"slo_attainment", "gpu_hours", "cost_usd", "p50_ms", "p95_ms", "p99_ms",
        "scaling_actions", "goodput_per_gpu_hour"}


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(simulate)
    return app


def files(tmp_path: Path, slo_ms: float = 300.0) -> tuple[Path, Path, Path]:
    config = {
        "prices": {"gpu": 2.0},
        "applications": [{
            "name": "app", "slo": {"latency_p95_ms": slo_ms},
            "versions": [{"name": "v1", "deployment": "model_v1", "max_replicas": 6,
                          "initial_replicas": 1}],
            "resources": {"gpu_type": "gpu", "gpus_per_replica": 1},
            "scaling": {"capacity_rps_per_replica": 10.0, "default_startup_s": 5},
        }],
    }
    profile = {
        "name": "toy", "kind": "encoder", "model": "toy", "hardware": "toy", "gpu_type": "gpu",
        "source": "made up for a test", "startup_s": 5,
        "encoder": {"throughput_seq_per_s": {1: 10}},
        "serving": {"max_batch_size": 1, "queue_limit": 100},
    }
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for i in range(600):
        rows.append(f"2023-11-16 18:{i // 300:02d}:{(i % 300) // 5:02d}.{(i % 5) * 2}000000,10,1")
    paths = (tmp_path / "governor.yaml", tmp_path / "toy.yaml", tmp_path / "trace.csv")
    paths[0].write_text(yaml.safe_dump(config))
    paths[1].write_text(yaml.safe_dump(profile))
    paths[2].write_text("\n".join(rows) + "\n")
    return paths


def test_all_four_policies_are_compared_in_the_table_json_and_plot(tmp_path: Path) -> None:
    config, profile, trace = files(tmp_path)
    out_json, out_png = tmp_path / "out" / "r.json", tmp_path / "out" / "r.png"
    result = CliRunner().invoke(cli(), [
        "--config", str(config), "--trace", str(trace), "--profile", str(profile),
        "--json", str(out_json), "--plot", str(out_png), "--rate-scale", "1.5",
        "--time-scale", "2"])
    assert result.exit_code == 0, result.output
    for name in ("governor", "ray-default", "hpa", "static-peak"):
        assert name in result.output
    doc = json.loads(out_json.read_text())
    assert set(doc["policies"]) == {"governor", "ray-default", "hpa", "static-peak"}
    for summary in doc["policies"].values():
        assert set(summary) >= KEYS
    assert doc["scenario"]["requests"] > 600
    assert out_png.stat().st_size > 10_000


def test_one_policy_can_be_chosen(tmp_path: Path) -> None:
    config, profile, trace = files(tmp_path)
    out_json = tmp_path / "r.json"
    result = CliRunner().invoke(cli(), [
        "--config", str(config), "--trace", str(trace), "--profile", str(profile),
        "--policy", "static-peak", "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    assert set(json.loads(out_json.read_text())["policies"]) == {"static-peak"}


def test_a_bad_trace_row_is_refused_with_its_line(tmp_path: Path) -> None:
    config, profile, trace = files(tmp_path)
    lines = trace.read_text().splitlines()
    lines[5] = "2023-11-16 18:00:01.0000000,-4,1"
    trace.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli(), [
        "--config", str(config), "--trace", str(trace), "--profile", str(profile)])
    assert result.exit_code == 2
    assert f"{trace}:6:" in result.output and "negative" in result.output


def test_an_infeasible_slo_is_refused(tmp_path: Path) -> None:
    config, profile, trace = files(tmp_path, slo_ms=50.0)
    result = CliRunner().invoke(cli(), [
        "--config", str(config), "--trace", str(trace), "--profile", str(profile)])
    assert result.exit_code == 2
    assert "infeasible" in result.output
