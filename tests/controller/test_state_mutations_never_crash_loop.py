"""Property: any mutation of a valid state file is refused cleanly or recovered from.

A mid-canary state file is mutated (a value replaced by any JSON, a key dropped, the text
cut or garbled); a daemon started on it either refuses to start with a `PermanentError`
naming the file, or ticks, and from its second tick on no tick fails.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.errors import PermanentError
from tests.controller.crash_world import CrashWorld, canary_config
from tests.controller.test_saved_state_is_validated_repaired_or_refused import mid_canary

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["2026-01-01T00:00:00+00:00", "canary", "v1", "v2", "embed/v1"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> CrashWorld:
    return mid_canary(tmp_path_factory.mktemp("valid"))


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*at, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: dict[str, Any]) -> str:
    """The state document's text after one to three mutations."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "drop", "wrap"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "drop":
            del parent[path[-1]]
        else:
            parent[path[-1]] = [parent[path[-1]]]
    text = json.dumps(doc)
    cut = draw(st.sampled_from(["none", "none", "none", "truncate", "garble"]))
    if cut == "truncate":
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif cut == "garble":
        i = draw(st.integers(0, len(text) - 1))
        text = (
            text[:i]
            + draw(st.sampled_from(['"', "}", "\x00", "\ud800", "NaN", ","]))
            + text[i + 1 :]
        )
    return text


def _clone(valid: CrashWorld, tmp: Path) -> CrashWorld:
    world = CrashWorld(tmp, canary_config(tmp / "state.json"))
    world.serve.apps = copy.deepcopy(valid.serve.apps)
    world.clients = copy.deepcopy(valid.clients)
    world.clients.serve = world.serve
    world.clock.t = valid.clock.t
    return world


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_mutated_state_file_is_refused_or_recovered(
    valid: CrashWorld, data: st.DataObject
) -> None:
    doc = json.loads(Path(valid.config.state_path).read_text())
    text = data.draw(mutated(doc))
    with tempfile.TemporaryDirectory() as tmp:
        world = _clone(valid, Path(tmp))
        Path(world.config.state_path).write_text(text, errors="surrogatepass")
        try:
            daemon = world.daemon()
        except PermanentError as refused:
            assert str(world.config.state_path) in str(refused)
            return
        errors = []
        for _ in range(3):
            errors.append(daemon.tick().error)
            world.advance(5)
        assert errors[1:] == [None, None], errors
        assert world.clients.failed == 0
