"""A bad live update is refused and the previous value stays in force."""

from __future__ import annotations

import pytest

from serving.errors import ArgsError
from serving.live_config import LiveSetting


def _bad() -> dict[str, int]:
    raise ArgsError("user_config.weights: weights must sum to 100")


def test_first_bad_value_raises_because_there_is_nothing_to_keep() -> None:
    setting: LiveSetting[dict[str, int]] = LiveSetting("weights", lambda: None)
    with pytest.raises(ArgsError):
        setting.update(_bad)


def test_later_bad_value_is_refused_counted_and_remembered() -> None:
    refusals: list[int] = []
    setting: LiveSetting[dict[str, int]] = LiveSetting("weights", lambda: refusals.append(1))
    assert setting.update(lambda: {"v1": 100})
    assert not setting.update(_bad)
    assert setting.value == {"v1": 100}
    assert refusals == [1]
    assert setting.last_error is not None and "sum to 100" in setting.last_error
    assert setting.update(lambda: {"v1": 50, "v2": 50})
    assert setting.last_error is None
