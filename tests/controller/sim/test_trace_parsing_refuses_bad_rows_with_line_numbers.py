"""A trace that cannot be used is refused with the line number and the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from controller.sim.errors import SimInputError, TraceError
from controller.sim.trace import default_trace_path, load_trace, parse_trace

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
ROW1 = "2023-11-16 18:15:46.6805900,374,44\n"
ROW2 = "2023-11-16 18:15:50.9951690,396,109\n"


def refusal(text: str) -> TraceError:
    with pytest.raises(TraceError) as caught:
        parse_trace(text, "t.csv")
    return caught.value


def test_a_valid_trace_is_parsed_relative_to_its_first_request() -> None:
    trace = parse_trace(HEADER + ROW1 + ROW2)
    assert len(trace) == 2
    assert trace.arrival_s[0] == 0.0
    assert trace.arrival_s[1] == pytest.approx(4.314579)
    assert trace.prompt_tokens.tolist() == [374, 396]
    assert trace.output_tokens.tolist() == [44, 109]
    assert trace.start.tzinfo is not None


def test_missing_column_is_refused_at_the_header() -> None:
    err = refusal("TIMESTAMP,ContextTokens\n2023-11-16 18:15:46,1\n")
    assert err.line == 1
    assert "GeneratedTokens" in err.reason


def test_unparsable_timestamp_names_its_line() -> None:
    err = refusal(HEADER + ROW1 + "yesterday,3,4\n")
    assert err.line == 3
    assert "yesterday" in err.reason
    assert str(err).startswith("t.csv:3:")


def test_unsorted_rows_are_refused_where_time_goes_back() -> None:
    err = refusal(HEADER + ROW2 + ROW1)
    assert err.line == 3
    assert "not sorted" in err.reason


@pytest.mark.parametrize("row", ["2023-11-16 18:15:50,-1,5\n", "2023-11-16 18:15:50,5,-7\n"])
def test_negative_token_counts_are_refused(row: str) -> None:
    err = refusal(HEADER + ROW1 + row)
    assert err.line == 3
    assert "negative" in err.reason


def test_non_numeric_tokens_and_short_rows_are_refused() -> None:
    assert "whole number" in refusal(HEADER + "2023-11-16 18:15:50,abc,5\n").reason
    assert refusal(HEADER + ROW1 + "2023-11-16 18:15:50,5\n").line == 3


def test_empty_file_and_header_without_rows_are_refused() -> None:
    assert refusal("").line == 1
    assert refusal(HEADER).line == 2


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SimInputError, match="cannot read"):
        load_trace(tmp_path / "missing.csv")


def test_shared_conversation_trace_is_found_from_the_repo_root() -> None:
    path = default_trace_path()
    if not path.exists():
        pytest.skip("the shared trace is not present in this checkout")
    trace = load_trace(path)
    assert len(trace) == 19366
    assert np.all(np.diff(trace.arrival_s) >= 0)
