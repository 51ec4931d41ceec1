"""A Mooncake JSONL trace is parsed to the same Trace; a bad row is refused with its line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from controller.sim.errors import SimInputError, TraceError
from controller.sim.trace import MOONCAKE_EPOCH, default_trace_path, load_trace, parse_mooncake

ROW1 = '{"timestamp": 500, "input_length": 40160, "output_length": 6, "hash_ids": [0, 1]}\n'
ROW2 = '{"timestamp": 1500, "input_length": 12, "output_length": 0}\n'
ROW3 = '{"timestamp": 1750, "input_length": 7, "output_length": 3, "hash_ids": []}\n'


def refusal(text: str) -> TraceError:
    with pytest.raises(TraceError) as caught:
        parse_mooncake(text, "t.jsonl")
    return caught.value


def test_a_valid_trace_is_parsed_in_seconds_from_its_first_request() -> None:
    trace = parse_mooncake(ROW1 + ROW2 + "\n" + ROW3)
    assert trace.arrival_s.tolist() == [0.0, 1.0, 1.25]
    assert trace.prompt_tokens.tolist() == [40160, 12, 7]
    assert trace.output_tokens.tolist() == [6, 0, 3]
    assert trace.duration_s == 1.25
    assert trace.start == datetime(2024, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)


def test_equal_timestamps_are_allowed() -> None:
    same = ROW1.replace("500", "1500")
    assert parse_mooncake(ROW1 + same + ROW2).arrival_s.tolist() == [0.0, 1.0, 1.0]


@pytest.mark.parametrize(("row", "words"), [
    ("{timestamp: 3}\n", "not JSON"),
    ("[1700, 5, 5]\n", "expected a JSON object, got an array"),
    ('"hello"\n', "expected a JSON object, got a string"),
    ('{"timestamp": 1700, "output_length": 5}\n', "missing key(s) input_length"),
    ('{"input_length": 5}\n', "missing key(s) timestamp, output_length"),
    ('{"timestamp": 1700, "input_length": 5.5, "output_length": 5}\n',
     "input_length 5.5 is not a whole number"),
    ('{"timestamp": 1700, "input_length": "5", "output_length": 5}\n',
     "input_length '5' is not a whole number"),
    ('{"timestamp": 1700, "input_length": 5, "output_length": true}\n',
     "output_length True is not a whole number"),
    ('{"timestamp": 1700, "input_length": 5, "output_length": -2}\n',
     "output_length is negative (-2)"),
    ('{"timestamp": -1, "input_length": 5, "output_length": 2}\n', "timestamp is negative"),
    ('{"timestamp": 1700, "input_length": 5, "output_length": 2, "hash_ids": 4}\n',
     "hash_ids is a number, not a list"),
])
def test_a_bad_third_row_is_refused_at_line_3(row: str, words: str) -> None:
    err = refusal(ROW1 + ROW2 + row)
    assert err.line == 3
    assert words in err.reason
    assert str(err).startswith("t.jsonl:3:")


def test_time_going_backwards_is_refused_where_it_goes_back() -> None:
    err = refusal(ROW1 + ROW3 + ROW2)
    assert err.line == 3
    assert "not sorted by timestamp (1500 ms is 250 ms before the row above)" in err.reason


def test_blank_lines_count_towards_the_line_number() -> None:
    assert refusal(ROW1 + "\n\n" + "[]\n").line == 4


def test_an_empty_file_is_refused() -> None:
    assert refusal("").line == 1
    assert "no requests" in refusal("\n  \n").reason


def test_the_extension_picks_the_format(tmp_path: Path) -> None:
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(ROW1 + ROW2)
    assert load_trace(jsonl).prompt_tokens.tolist() == [40160, 12]
    csv = tmp_path / "t.csv"
    csv.write_text(ROW1 + ROW2)
    with pytest.raises(TraceError, match="missing column"):
        load_trace(csv)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(ROW1 + "oops\n")
    with pytest.raises(TraceError, match=r"bad\.jsonl:2: not JSON"):
        load_trace(bad)
    with pytest.raises(SimInputError, match="cannot read"):
        load_trace(tmp_path / "missing.jsonl")


def test_the_shared_mooncake_trace_loads() -> None:
    path = default_trace_path().parent / "mooncake_synthetic.jsonl"
    if not path.exists():
        pytest.skip("the shared Mooncake trace is not present in this checkout")
    trace = load_trace(path)
    assert len(trace) == 3993
    assert trace.duration_s == pytest.approx(1022.025)
    assert trace.start == MOONCAKE_EPOCH
    assert np.all(np.diff(trace.arrival_s) >= 0)
    assert trace.prompt_tokens.max() == 191378
