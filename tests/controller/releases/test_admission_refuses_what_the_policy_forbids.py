"""Admission: a release is refused for every rule of the policy it breaks, and only those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.config import GovernorConfig
from controller.releases.admission import RULES, Refusal, admit, canary_replicas
from controller.releases.policy import FreezeWindow, ReleasePolicy
from controller.releases.request import ReleaseRequest
from controller.snapshot import AppSnapshot, Snapshot, VersionSnapshot

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def app_doc(name: str, team: str, min_replicas: int = 1, **extra: Any) -> dict[str, Any]:
    """One application with a single (stable) version `v1`."""
    return {
        "name": name,
        "team": team,
        "slo": {"latency_p95_ms": 200},
        "versions": [
            {
                "name": "v1",
                "deployment": f"{name}_v1",
                "min_replicas": min_replicas,
                "max_replicas": 8,
            }
        ],
        **extra,
    }


def make_config(*apps: dict[str, Any], **top: Any) -> GovernorConfig:
    """search and rank (team search, cpu at 0.8/h), chat (team ml, one a100 at 2.5/h)."""
    doc: dict[str, Any] = {
        "prices": {"cpu": 0.8, "a100": 2.5, "l4": 1.0},
        "applications": list(apps)
        or [
            app_doc("search", "search"),
            app_doc("rank", "search"),
            app_doc("chat", "ml", resources={"gpu_type": "a100", "gpus_per_replica": 1.0}),
        ],
        "budgets": {"teams": {"search": {"per_hour": 4.0}}},
    }
    doc.update(top)
    return GovernorConfig.model_validate(doc)


def observed(app: str, replicas: int | None) -> AppSnapshot:
    """App `app` whose stable v1 runs (and targets) `replicas`."""
    v1 = VersionSnapshot(
        app=app,
        version="v1",
        deployment=f"{app}_v1",
        running_replicas=replicas,
        target_replicas=replicas,
    )
    return AppSnapshot(name=app, versions=(v1,), weights={"v1": 100})


def snapshot(*apps: AppSnapshot) -> Snapshot:
    return Snapshot(now=NOW, apps=apps)


CONFIG = make_config()
SNAP = snapshot(observed("search", 1), observed("rank", 1), observed("chat", 1))
"""search spends 0.80/h + rank 0.80/h of team search's 4.00/h."""


def request(app: str = "search", **fields: Any) -> ReleaseRequest:
    """A release that keeps every rule of `POLICY`."""
    base: dict[str, Any] = {
        "id": "r-1",
        "app": app,
        "version": "v2",
        "model": "bundled:all-MiniLM-L6-v2",
        "actor": "alice",
        "requested_at": NOW,
        "meta": {"owner": "alice@example.com"},
        "scores": {"sts_spearman": 0.83},
    }
    base.update(fields)
    return ReleaseRequest(**base)


def policy(**fields: Any) -> ReleasePolicy:
    """A policy every `request()` keeps; fields override."""
    doc: dict[str, Any] = {
        "allowed_sources": ["bundled:", "/models/"],
        "required_meta": ["owner"],
        "min_scores": {"sts_spearman": 0.8},
    }
    doc.update(fields)
    return ReleasePolicy.model_validate(doc)


POLICY = policy()


def check(
    req: ReleaseRequest | None = None,
    pol: ReleasePolicy = POLICY,
    config: GovernorConfig = CONFIG,
    snap: Snapshot = SNAP,
    now: datetime = NOW,
) -> list[Refusal]:
    req = req or request()
    return admit(req, config.app(req.app), config, pol, snap, now)


def only(refusals: list[Refusal]) -> Refusal:
    assert len(refusals) == 1, refusals
    return refusals[0]


def test_a_release_that_keeps_every_rule_is_admitted() -> None:
    assert check() == []


def test_the_default_policy_asks_only_for_an_owner() -> None:
    assert check(pol=ReleasePolicy()) == []
    bare = request(meta={}, scores={}, model="/tmp/anything")
    refusal = only(check(bare, pol=ReleasePolicy()))
    assert refusal.rule == "metadata" and "'owner'" in refusal.message


def test_a_model_source_outside_the_allowed_prefixes_is_refused() -> None:
    refusal = only(check(request(model="/tmp/x")))
    assert refusal == Refusal(
        "source", "model source '/tmp/x' is not under an allowed prefix: ['bundled:', '/models/']"
    )
    assert check(request(model="/models/x")) == []


def test_any_source_is_allowed_when_the_policy_lists_none() -> None:
    assert check(request(model="hf:someone/model"), pol=policy(allowed_sources=[])) == []


def test_missing_or_empty_required_metadata_is_refused_per_key() -> None:
    pol = policy(required_meta=["owner", "description"])
    refusals = check(request(meta={"owner": "  "}), pol=pol)
    assert [r.rule for r in refusals] == ["metadata", "metadata"]
    assert "'owner' is empty" in refusals[0].message
    assert "'description' is missing" in refusals[1].message


def test_a_missing_score_or_one_below_its_minimum_is_refused() -> None:
    pol = policy(min_scores={"sts_spearman": 0.8, "recall_at_10": 0.9})
    refusals = check(request(scores={"sts_spearman": 0.79}), pol=pol)
    assert [r.rule for r in refusals] == ["score", "score"]
    assert "'sts_spearman' is 0.79, below the minimum 0.8" in refusals[0].message
    assert "'recall_at_10' is missing" in refusals[1].message
    assert check(request(scores={"sts_spearman": 0.8, "recall_at_10": 0.95}), pol=pol) == []


def test_a_canary_that_takes_its_team_over_budget_is_refused() -> None:
    # search and rank run 2 replicas each at 0.80/h: the team spends 3.20/h of 4.00/h.
    snap = snapshot(observed("search", 2), observed("rank", 2), observed("chat", 1))
    refusal = only(check(snap=snap))
    assert refusal == Refusal(
        "budget",
        "team 'search' spends 3.20/h; the canary's 2 replicas add 1.60/h, over its budget of "
        "4.00/h",
    )


def test_a_canary_that_exactly_fills_the_team_budget_is_admitted() -> None:
    # 4 x 0.8 + 1 x 0.8 is 4.0 on paper (4.000000000000001 in floats).
    snap = snapshot(observed("search", 1), observed("rank", 3), observed("chat", 1))
    assert check(snap=snap) == []
    snap = snapshot(observed("search", 1), observed("rank", 4), observed("chat", 1))
    assert only(check(snap=snap)).rule == "budget"


def test_the_canary_is_sized_as_the_observed_stable_version() -> None:
    snap = snapshot(observed("search", 3), observed("rank", 0), observed("chat", 1))
    assert canary_replicas(CONFIG.app("search"), snap) == 3
    # rank keeps its min_replicas 1: the team spends 4 x 0.8, the canary adds 3 x 0.8.
    refusal = only(check(snap=snap))
    assert "spends 3.20/h; the canary's 3 replicas add 2.40/h" in refusal.message


def test_an_unobserved_stable_version_sizes_the_canary_at_its_min_replicas() -> None:
    config = make_config(app_doc("search", "search", min_replicas=3), app_doc("rank", "search"))
    snap = snapshot(observed("rank", 1))
    assert canary_replicas(config.app("search"), snap) == 3
    refusal = only(check(config=config, snap=snap))
    # search is drafted at its min_replicas 3 too: 3 x 0.8 + 1 x 0.8 spent, 3 x 0.8 added.
    assert "spends 3.20/h; the canary's 3 replicas add 2.40/h" in refusal.message


def test_a_canary_is_at_least_one_replica() -> None:
    config = make_config(app_doc("search", "search", min_replicas=0), app_doc("rank", "search"))
    assert canary_replicas(config.app("search"), snapshot()) == 1
    assert canary_replicas(config.app("search"), snapshot(observed("search", 0))) == 1


def test_a_canary_that_takes_the_fleet_over_the_total_budget_is_refused() -> None:
    config = make_config(budgets={"total_per_hour": 5.0})
    # 0.8 + 0.8 + 2.5 = 4.10/h now; the search canary adds 0.80/h.
    assert check(config=config) == []
    refusal = only(check(request("chat"), config=config))
    assert refusal == Refusal(
        "budget",
        "the fleet spends 4.10/h; the canary's 1 replica adds 2.50/h, over the total budget of "
        "5.00/h",
    )


def test_a_team_without_a_budget_has_no_team_limit() -> None:
    snap = snapshot(observed("search", 1), observed("rank", 1), observed("chat", 8))
    assert check(request("chat"), snap=snap) == []


def test_the_budget_rule_can_be_turned_off() -> None:
    snap = snapshot(observed("search", 4), observed("rank", 4), observed("chat", 1))
    assert only(check(snap=snap)).rule == "budget"
    assert check(snap=snap, pol=policy(budget_covers_canary=False)) == []


def test_a_team_limited_to_other_gpus_is_refused_its_gpu_type_and_gpu_count() -> None:
    pol = policy(teams={"ml": {"gpu_types": ["l4"], "max_gpus_per_replica": 0.5}})
    refusals = check(request("chat"), pol=pol)
    assert [r.rule for r in refusals] == ["gpu-type", "gpus-per-replica"]
    assert "gpu type 'a100'" in refusals[0].message and "['l4']" in refusals[0].message
    assert (
        "holds 1 GPUs per replica" in refusals[1].message and "at most 0.5" in refusals[1].message
    )
    # the limits are the ml team's: search (team search, cpu) is not held to them
    assert check(request("search"), pol=pol) == []


def test_team_limits_that_are_unset_allow_anything() -> None:
    pol = policy(teams={"ml": {"max_gpus_per_replica": 1.0}})
    assert check(request("chat"), pol=pol) == []
    pol = policy(teams={"ml": {"gpu_types": ["a100", "l4"]}})
    assert check(request("chat"), pol=pol) == []


def window(hours: tuple[int, int] = (-1, 1), **fields: Any) -> dict[str, Any]:
    start, end = (NOW + timedelta(hours=h) for h in hours)
    return {"start": start.isoformat(), "end": end.isoformat(), **fields}


def test_a_release_inside_a_freeze_window_is_refused_with_its_reason() -> None:
    pol = policy(freeze=[window(reason="quarter close")])
    refusal = only(check(pol=pol))
    assert refusal == Refusal(
        "freeze",
        "releases are frozen from 2026-03-02T11:00:00+00:00 to 2026-03-02T13:00:00+00:00: "
        "quarter close",
    )


def test_a_freeze_window_holds_from_its_start_up_to_but_not_at_its_end() -> None:
    pol = policy(freeze=[window((0, 2))])
    assert only(check(pol=pol, now=NOW)).rule == "freeze"
    assert only(check(pol=pol, now=NOW + timedelta(hours=2) - timedelta(microseconds=1))).rule == (
        "freeze"
    )
    assert check(pol=pol, now=NOW + timedelta(hours=2)) == []
    assert check(pol=pol, now=NOW - timedelta(microseconds=1)) == []


def test_a_freeze_window_holds_only_its_apps_and_teams() -> None:
    pol = policy(freeze=[window(apps=["chat"])])
    assert check(request("search"), pol=pol) == []
    assert only(check(request("chat"), pol=pol)).rule == "freeze"
    pol = policy(freeze=[window(teams=["search"])])
    assert only(check(request("search"), pol=pol)).rule == "freeze"
    assert check(request("chat"), pol=pol) == []
    pol = policy(freeze=[window(apps=["search"], teams=["ml"])])
    assert check(request("search"), pol=pol) == []


def test_a_freeze_window_in_another_time_zone_compares_by_instant() -> None:
    # 11:30 to 13:00 UTC, written in two other zones; NOW is 12:00 UTC.
    pol = policy(
        freeze=[{"start": "2026-03-02T13:30:00+02:00", "end": "2026-03-02T08:00:00-05:00"}]
    )
    assert only(check(pol=pol)).rule == "freeze"
    assert check(pol=pol, now=NOW + timedelta(hours=1)) == []


def test_every_broken_rule_is_reported_in_rule_order() -> None:
    pol = policy(
        teams={"ml": {"gpu_types": ["l4"], "max_gpus_per_replica": 0.5}},
        freeze=[window(reason="incident")],
        budget_covers_canary=True,
    )
    config = make_config(budgets={"total_per_hour": 4.0})
    bad = request("chat", model="/tmp/x", meta={}, scores={"sts_spearman": 0.1})
    refusals = check(bad, pol=pol, config=config)
    assert [r.rule for r in refusals] == list(RULES)


def test_a_request_for_another_app_or_a_naive_now_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="'chat'"):
        admit(request("chat"), CONFIG.app("search"), CONFIG, POLICY, SNAP, NOW)
    with pytest.raises(ValueError, match="naive"):
        check(now=NOW.replace(tzinfo=None))


@pytest.mark.parametrize("field", ["start", "end"])
def test_a_naive_freeze_time_is_refused_naming_the_field(field: str) -> None:
    doc = window()
    doc[field] = doc[field].removesuffix("+00:00")
    with pytest.raises(ValidationError) as err:
        FreezeWindow.model_validate(doc)
    (error,) = err.value.errors()
    assert error["loc"] == (field,)
    assert "must carry a time zone" in error["msg"]


@pytest.mark.parametrize("hours", [(1, 1), (1, -1)])
def test_a_freeze_window_that_does_not_end_after_it_starts_is_refused(
    hours: tuple[int, int],
) -> None:
    with pytest.raises(ValidationError) as err:
        ReleasePolicy.model_validate({"freeze": [window(hours)]})
    (error,) = err.value.errors()
    assert error["loc"] == ("freeze", 0, "end")
    assert "must be after start" in error["msg"]


def test_a_freeze_time_that_is_not_a_date_and_time_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        FreezeWindow.model_validate({"start": 1767225600, "end": window()["end"]})
    assert err.value.errors()[0]["loc"] == ("start",)


@pytest.mark.parametrize(
    "doc, loc",
    [
        ({"allowed_sources": [""]}, ("allowed_sources", 0)),
        ({"min_scores": {"x": float("nan")}}, ("min_scores", "x")),
        ({"teams": {"ml": {"max_gpus_per_replica": -1}}}, ("teams", "ml", "max_gpus_per_replica")),
        ({"budget_covers_canary": "yes"}, ("budget_covers_canary",)),
        ({"freezes": []}, ("freezes",)),
    ],
)
def test_a_policy_field_that_cannot_work_is_refused(doc: dict[str, Any], loc: tuple) -> None:
    with pytest.raises(ValidationError) as err:
        ReleasePolicy.model_validate(doc)
    assert err.value.errors()[0]["loc"] == loc


POLICIES = st.builds(
    ReleasePolicy,
    allowed_sources=st.lists(st.sampled_from(["bundled:", "made:", "/models/", "hf:acme/"])),
    required_meta=st.lists(st.sampled_from(["owner", "description", "ticket"])),
    min_scores=st.dictionaries(
        st.sampled_from(["a", "b"]), st.floats(-10, 10, allow_nan=False, allow_infinity=False)
    ),
    budget_covers_canary=st.booleans(),
    teams=st.dictionaries(
        st.sampled_from(["search", "ml", "other"]),
        st.builds(
            dict,
            gpu_types=st.none() | st.lists(st.sampled_from(["cpu", "a100", "l4"])),
            max_gpus_per_replica=st.none() | st.floats(0, 4, allow_nan=False),
        ),
    ),
    freeze=st.lists(
        st.tuples(st.integers(-5, 5), st.integers(1, 5)).map(
            lambda t: FreezeWindow(
                start=NOW + timedelta(hours=t[0]), end=NOW + timedelta(hours=t[0] + t[1])
            )
        ),
        max_size=3,
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    pol=POLICIES,
    app=st.sampled_from(["search", "rank", "chat"]),
    model=st.text(max_size=12) | st.sampled_from(["bundled:x", "/models/y", "hf:acme/z"]),
    meta=st.dictionaries(st.sampled_from(["owner", "ticket"]), st.text(max_size=3)),
    scores=st.dictionaries(st.sampled_from(["a", "b"]), st.floats(allow_nan=True)),
    replicas=st.lists(st.none() | st.integers(0, 8), min_size=3, max_size=3),
    hours=st.integers(-8, 8),
    budgets=st.fixed_dictionaries(
        {"total_per_hour": st.none() | st.floats(0, 50)},
        optional={"teams": st.just({"search": {"per_hour": 4.0}, "ml": {"per_hour": 0.0}})},
    ),
)
def test_admission_never_raises_and_names_only_known_rules(
    pol: ReleasePolicy,
    app: str,
    model: str,
    meta: dict[str, str],
    scores: dict[str, float],
    replicas: list[int | None],
    hours: int,
    budgets: dict[str, Any],
) -> None:
    config = make_config(budgets=budgets)
    snap = snapshot(
        *(observed(a, n) for a, n in zip(("search", "rank", "chat"), replicas, strict=True))
    )
    req = request(app, model=model, meta=meta, scores=scores)
    refusals = check(req, pol=pol, config=config, snap=snap, now=NOW + timedelta(hours=hours))
    assert all(isinstance(r, Refusal) and r.rule in RULES and r.message for r in refusals)
    order = [RULES.index(r.rule) for r in refusals]
    assert order == sorted(order)
    if not pol.budget_covers_canary:
        assert "budget" not in {r.rule for r in refusals}
