"""A config can include files of applications and team budgets; errors name the file they are in."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.config import WorkModel, load_config
from controller.errors import ConfigError
from tests.controller.fleet import app_doc

WORK = {"per_request_s": 0.002, "per_prompt_token_s": 1.5e-4, "reference_prompt_tokens": 32.0}


def put(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def main(tmp_path: Path, include: Any, **extra: Any) -> Path:
    doc = {"prices": {"cpu": 1.0}, "budgets": {"total_per_hour": 50}, "include": include}
    doc.update(extra)
    return put(tmp_path / "governor.yaml", doc)


def team(tmp_path: Path, name: str, *apps: str, budget: float | None = None) -> Path:
    doc: dict[str, Any] = {"applications": [app_doc(a, team=name) for a in apps]}
    if budget is not None:
        doc["budgets"] = {"teams": {name: {"per_hour": budget}}}
    return put(tmp_path / "teams" / f"{name}.yaml", doc)


def test_included_files_add_applications_and_team_budgets_in_order(tmp_path: Path) -> None:
    team(tmp_path, "search", "search-embed", "search-rank", budget=10)
    team(tmp_path, "ads", "ads-ctr", budget=5)
    path = main(tmp_path, ["teams/*.yaml"], applications=[app_doc("front")])
    config = load_config(path)
    assert [a.name for a in config.applications] == [
        "front", "ads-ctr", "search-embed", "search-rank"
    ]  # fmt: skip
    assert config.app("search-rank").team == "search"
    assert {t: b.per_hour for t, b in config.budgets.teams.items()} == {"ads": 5, "search": 10}
    assert config.budgets.total_per_hour == 50


def test_a_bad_field_is_named_with_the_included_file_and_its_own_index(tmp_path: Path) -> None:
    bad = team(tmp_path, "search", "search-embed", "search-rank")
    doc = yaml.safe_load(bad.read_text())
    doc["applications"][1]["slo"]["latency_p95_ms"] = -5
    put(bad, doc)
    with pytest.raises(ConfigError) as err:
        load_config(main(tmp_path, "teams/search.yaml", applications=[app_doc("front")]))
    assert str(err.value).startswith(f"{bad}: applications[1].slo.latency_p95_ms: ")


def test_a_bad_team_budget_names_the_file_that_set_it(tmp_path: Path) -> None:
    bad = put(tmp_path / "teams" / "ads.yaml", {"budgets": {"teams": {"ads": {"per_hour": -1}}}})
    with pytest.raises(ConfigError) as err:
        load_config(main(tmp_path, "teams/ads.yaml", applications=[app_doc("front")]))
    assert str(err.value).startswith(f"{bad}: budgets.teams.ads.per_hour: ")


def test_an_application_defined_twice_names_both_files(tmp_path: Path) -> None:
    first = team(tmp_path, "ads", "shared")
    second = team(tmp_path, "search", "search-embed", "shared")
    with pytest.raises(ConfigError) as err:
        load_config(main(tmp_path, ["teams/ads.yaml", "teams/search.yaml"]))
    message = str(err.value)
    assert message.startswith(f"{second}: applications[1].name: application 'shared'")
    assert f"also defined at {first}: applications[0]" in message


def test_a_team_budget_set_twice_names_both_files(tmp_path: Path) -> None:
    first = team(tmp_path, "ads", "ads-ctr", budget=5)
    put(tmp_path / "more.yaml", {"budgets": {"teams": {"ads": {"per_hour": 7}}}})
    with pytest.raises(
        ConfigError, match=rf"budgets\.teams\.ads: also set in {re.escape(str(first))}"
    ):
        load_config(main(tmp_path, ["teams/ads.yaml", "more.yaml"]))


def test_an_include_cycle_is_refused(tmp_path: Path) -> None:
    put(tmp_path / "a.yaml", {"include": "sub/b.yaml", "applications": [app_doc("a")]})
    put(tmp_path / "sub" / "b.yaml", {"include": "../a.yaml"})
    with pytest.raises(ConfigError, match=r"makes a cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_config(main(tmp_path, "a.yaml"))
    put(tmp_path / "self.yaml", {"include": "governor.yaml"})
    with pytest.raises(ConfigError, match="makes a cycle"):
        load_config(main(tmp_path, "self.yaml"))


def test_a_file_included_twice_is_refused(tmp_path: Path) -> None:
    team(tmp_path, "ads", "ads-ctr")
    with pytest.raises(ConfigError, match=r"ads\.yaml is already included by"):
        load_config(main(tmp_path, ["teams/ads.yaml", "teams/*.yaml"]))


def test_a_missing_file_or_an_empty_glob_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"include: .*teams/absent\.yaml does not exist"):
        load_config(main(tmp_path, "teams/absent.yaml"))
    with pytest.raises(ConfigError, match=r"include: 'teams/\*\.yaml' matches no file"):
        load_config(main(tmp_path, ["teams/*.yaml"]))
    with pytest.raises(ConfigError, match="include: must be a path or a list of paths"):
        load_config(main(tmp_path, {"teams": 1}))


def test_an_included_file_sets_only_applications_and_team_budgets(tmp_path: Path) -> None:
    bad = put(tmp_path / "teams" / "ads.yaml", {"prices": {"cpu": 3}, "applications": []})
    with pytest.raises(
        ConfigError, match=rf"^{re.escape(str(bad))}: prices: an included file may set only"
    ):
        load_config(main(tmp_path, "teams/ads.yaml", applications=[app_doc("front")]))
    put(bad, {"budgets": {"total_per_hour": 3}})
    with pytest.raises(
        ConfigError, match=rf"^{re.escape(str(bad))}: budgets: an included file may set only"
    ):
        load_config(main(tmp_path, "teams/ads.yaml", applications=[app_doc("front")]))


def test_includes_nest_and_paths_are_relative_to_the_including_file(tmp_path: Path) -> None:
    put(tmp_path / "teams" / "search" / "index.yaml", {"include": ["models/*.yaml"]})
    put(
        tmp_path / "teams" / "search" / "models" / "embed.yaml",
        {"applications": [app_doc("embed", scaling={"calibration": "../cal.yaml"})]},
    )
    put(tmp_path / "teams" / "search" / "cal.yaml", {"kind": "encoder", "work": WORK})
    config = load_config(main(tmp_path, "teams/search/index.yaml"))
    assert config.app("embed").scaling.work == WorkModel(**WORK)


def test_a_missing_calibration_names_the_included_file(tmp_path: Path) -> None:
    doc = {"applications": [app_doc("a"), app_doc("b", scaling={"calibration": "absent.yaml"})]}
    inc = put(tmp_path / "teams" / "t.yaml", doc)
    with pytest.raises(ConfigError) as err:
        load_config(main(tmp_path, "teams/t.yaml"))
    assert str(err.value).startswith(f"{inc}: applications[1].scaling.calibration: ")


def test_a_json_config_loads_like_its_yaml(tmp_path: Path) -> None:
    doc = {"prices": {"cpu": 1.0}, "applications": [app_doc("a"), app_doc("b")]}
    as_yaml = load_config(put(tmp_path / "governor.yaml", doc))
    (tmp_path / "governor.json").write_text(json.dumps(doc))
    assert load_config(tmp_path / "governor.json") == as_yaml
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path / "bad.json")
