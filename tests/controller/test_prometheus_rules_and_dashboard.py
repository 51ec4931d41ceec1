"""The alert rules pass promtool, and the dashboard and rules read only series the project exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from controller.prometheus_config import scrape_config, write_scrape_config
from tests.controller.promql_names import (
    RULES,
    dashboard,
    dashboard_exprs,
    exported_names,
    metric_names_in,
    rules_with,
)

pytestmark = pytest.mark.prometheus


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: run scripts/ensure-prometheus.sh"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def test_the_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULES.with_name("alerts.test.yaml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_asked_for_is_there() -> None:
    alerts = {r["alert"] for r in rules_with("alert")}
    assert {
        "GovernorSLOBurnRateFast",
        "GovernorSLOBurnRateSlow",
        "GovernorBudgetExhausted",
        "GovernorNotTicking",
        "GovernorSignalSourceDown",
    } <= alerts
    for rule in rules_with("alert"):
        assert rule["labels"]["severity"] in ("page", "ticket", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_the_rules_read_only_exported_series() -> None:
    exported = exported_names()
    for rule in rules_with("expr"):
        unknown = metric_names_in(rule["expr"]) - exported
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads {unknown}"


def test_the_dashboard_loads_and_every_query_names_an_exported_metric() -> None:
    doc = dashboard()
    assert doc["uid"] and doc["title"]
    exprs = dashboard_exprs(doc)
    assert len(exprs) >= 20
    exported = exported_names()
    for title, expr in exprs:
        names = metric_names_in(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= exported, f"{title}: {names - exported} is not exported"


def test_the_dashboard_covers_slo_replicas_weights_cost_and_rollouts() -> None:
    used = set().union(*(metric_names_in(e) for _, e in dashboard_exprs(dashboard())))
    assert {
        "governor_latency_p95_ms",
        "governor_slo_latency_p95_ms",
        "governor_desired_replicas",
        "governor_running_replicas",
        "governor_traffic_weight_percent",
        "governor_fleet_cost_per_hour",
        "governor_budget_per_hour",
        "governor_rollout_phase",
        "governor_rollout_verdicts_total",
        "governor_releases_total",
    } <= used


def test_the_dashboard_panels_fit_the_grid_and_have_unique_ids() -> None:
    panels = dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, p["title"]
        for t in p.get("targets", []):
            assert t["datasource"]["uid"] == "${datasource}", p["title"]


def test_the_generated_scrape_config_passes_promtool(tmp_path: Path) -> None:
    sd = tmp_path / "prom_metrics_service_discovery.json"
    sd.write_text('[{"labels": {"job": "ray"}, "targets": ["127.0.0.1:8080"]}]')
    out = write_scrape_config(
        tmp_path / "prometheus.yml",
        scrape_config(str(sd), "127.0.0.1:9400", "2s", [str(RULES)]),
    )
    result = promtool("check", "config", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    doc = yaml.safe_load(out.read_text())
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert jobs["ray"]["file_sd_configs"][0]["files"] == [str(sd)]
    assert jobs["governor"]["static_configs"][0]["targets"] == ["127.0.0.1:9400"]
    assert doc["global"]["scrape_interval"] == "2s"


def test_the_daemon_job_can_be_left_out_and_bad_input_is_refused() -> None:
    doc = scrape_config(daemon=None)
    assert [j["job_name"] for j in doc["scrape_configs"]] == ["ray"]
    with pytest.raises(ValueError, match="HOST:PORT"):
        scrape_config(daemon="http://x")
    with pytest.raises(ValueError, match="duration"):
        scrape_config(scrape_interval="5 seconds")


def test_the_cli_writes_the_config(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from controller.cli import app

    out = tmp_path / "nested" / "prometheus.yml"
    args = ["prometheus-config", "--out", str(out), "--ray-sd-file", "/x/sd.json"]
    result = CliRunner().invoke(app, [*args, "--daemon", "127.0.0.1:9411", "--rules", str(RULES)])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(out.read_text())
    assert doc["rule_files"] == [str(RULES)]
    assert doc["scrape_configs"][1]["static_configs"][0]["targets"] == ["127.0.0.1:9411"]
    bad = CliRunner().invoke(app, ["prometheus-config", "--out", str(out), "--daemon", "nope"])
    assert bad.exit_code == 2
