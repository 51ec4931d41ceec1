"""Metric names used in PromQL expressions, and the names the project exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from controller.signals import metric_names
from controller.telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "configs" / "prometheus" / "alerts.rules.yaml"
DASHBOARD = ROOT / "configs" / "prometheus" / "grafana-dashboard.json"

# Prometheus makes `up` for every target it scrapes.
SYNTHETIC = {"up"}
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}  # fmt: skip
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME_MATCHER = re.compile(r'__name__\s*=~?\s*"([^"]*)"')
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names_in(expr: str) -> set[str]:
    """Metric names an expression reads (selectors by name, and `__name__` matchers)."""
    names = {m for m in _NAME_MATCHER.findall(expr) if not any(c in m for c in "|.*(")}
    for pattern in _NAME_MATCHER.findall(expr):
        names |= _expand_alternatives(pattern)
    text = _GROUPING.sub(" ", expr)
    text = _MATCHERS.sub(" ", _STRINGS.sub('""', text))
    text = _RANGES.sub(" ", text)
    for name, call in _IDENT.findall(text):
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def _expand_alternatives(pattern: str) -> set[str]:
    match = re.fullmatch(r"([\w:]*)\(([\w|]+)\)([\w:]*)", pattern)
    if not match:
        return set()
    head, options, tail = match.groups()
    return {head + o + tail for o in options.split("|")}


def exported_names() -> set[str]:
    """Series the daemon, the data plane (as Ray exports it) and the recording rules produce."""
    names = set(SYNTHETIC)
    for family in Telemetry().registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
    names |= {v for k, v in vars(metric_names).items() if k.isupper() and v.startswith("ray_")}
    names |= {rule["record"] for rule in rules_with("record")}
    return names


def rules_with(key: str) -> list[dict[str, Any]]:
    """Every rule of the rules file that has `key` (`record` or `alert`)."""
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if key in r]


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard document."""
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_exprs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query of every panel."""
    return [(p["title"], t["expr"]) for p in doc["panels"] for t in p.get("targets", [])]
