"""Settings that change live through a deployment's `user_config`.

Serve applies a new user_config by calling `reconfigure` on running replicas; a replica
whose reconfigure raises is stopped, and with it the traffic it carried. So an update
that fails validation is refused instead: the previous value stays in force, the
refusal is logged and counted. Only the very first value, with nothing to fall back on,
fails loudly (the deployment then reports the field and the reason).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from serving.errors import ArgsError

logger = logging.getLogger("ray.serve")

Value = TypeVar("Value")


class LiveSetting(Generic[Value]):
    """The value in force for one setting, and the last refused update."""

    def __init__(self, name: str, on_refused: Callable[[], None]) -> None:
        self.name = name
        self._on_refused = on_refused
        self._value: Value | None = None
        self.last_error: str | None = None

    @property
    def value(self) -> Value:
        """The value in force; only valid once a first update succeeded."""
        if self._value is None:
            raise RuntimeError(f"{self.name} has not been configured yet")
        return self._value

    @property
    def configured(self) -> bool:
        """Whether a first update succeeded."""
        return self._value is not None

    def update(self, parse: Callable[[], Value]) -> bool:
        """Parse and adopt a new value; on failure keep the old one and return False."""
        try:
            new = parse()
        except ArgsError as exc:
            if self._value is None:
                raise
            self.last_error = str(exc)
            logger.error("refused %s update, keeping %r: %s", self.name, self._value, exc)
            self._on_refused()
            return False
        self._value = new
        self.last_error = None
        return True
