"""Gauge values set once keep being published, since Ray drops series not set recently."""

from __future__ import annotations

import time
from typing import Any

from serving.metrics import HeldGauges


class RecordingGauge:
    def __init__(self) -> None:
        self.calls: list[tuple[float, dict[str, str]]] = []

    def set(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append((value, tags))


def test_value_is_republished_until_replaced() -> None:
    gauge: Any = RecordingGauge()
    held = HeldGauges(period_s=0.02)
    held.set(gauge, 100, tags={"version": "v1"})
    time.sleep(0.15)
    assert len(gauge.calls) >= 3
    assert set(map(repr, gauge.calls)) == {repr((100, {"version": "v1"}))}
    held.set(gauge, 50, tags={"version": "v1"})
    time.sleep(0.1)
    assert gauge.calls[-1] == (50, {"version": "v1"})
