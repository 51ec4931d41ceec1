"""Request traces: parse, validate, scale, slice.

Two file formats are read, picked by the file's extension:

- Azure LLM inference CSV (any extension but `.jsonl`): the columns `TIMESTAMP,
  ContextTokens, GeneratedTokens` (`2023-11-16 18:15:46.6805900,374,44`), sorted by time.
- Mooncake JSONL (`.jsonl`): one JSON object a line with `timestamp` (milliseconds from
  the start, sorted), `input_length` and `output_length` (tokens) and optionally
  `hash_ids` (a list; not used). Its rows carry no date: timestamp 0 is `MOONCAKE_EPOCH`.

A row that cannot be used is refused with its 1-based line number and the reason;
nothing is guessed.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from controller.sim.errors import SimInputError, TraceError

COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MOONCAKE_KEYS = ("timestamp", "input_length", "output_length")
MOONCAKE_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
"""Wall-clock time of timestamp 0 in a Mooncake trace (its rows carry no date)."""
DEFAULT_TRACE = Path("../shared/traces/AzureLLMInferenceTrace_conv.csv")
"""The shared conversation trace, relative to the repository root."""


@dataclass(frozen=True, eq=False)
class Trace:
    """Requests as parallel arrays: arrival second (from `start`), tokens in/out.

    A recorded trace starts at its first request; a generated one at the start of its
    schedule, which may come a little before the first request.
    """

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    start: datetime
    """Wall-clock time of `arrival_s == 0` (UTC)."""
    source: str = "<trace>"

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last arrival."""
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) else 0.0


def repo_root() -> Path:
    """The repository root (the directory holding `controller/`)."""
    return Path(__file__).resolve().parents[2]


def default_trace_path() -> Path:
    """The shared conversation trace, resolved against the repository root."""
    return (repo_root() / DEFAULT_TRACE).resolve()


def _parse_time(text: str, source: str, line: int) -> datetime:
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TraceError(
            source, line, f"TIMESTAMP {text!r} is not a time like 2023-11-16 18:15:46.6805900"
        ) from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _parse_tokens(text: str, column: str, source: str, line: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise TraceError(source, line, f"{column} {text!r} is not a whole number") from None
    if value < 0:
        raise TraceError(source, line, f"{column} is negative ({value})")
    return value


def parse_trace(text: str, source: str = "<trace>") -> Trace:
    """Parse trace CSV text, or raise TraceError naming the line and the reason."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise TraceError(source, 1, "the file is empty; expected a header " + ",".join(COLUMNS))
    names = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise TraceError(source, 1, f"missing column(s) {', '.join(missing)}; header is {names}")
    idx = [names.index(c) for c in COLUMNS]
    times: list[float] = []
    prompts: list[int] = []
    outputs: list[int] = []
    start: datetime | None = None
    previous = float("-inf")
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(names):
            raise TraceError(source, line, f"expected {len(names)} fields, got {len(row)}")
        stamp = _parse_time(row[idx[0]], source, line)
        if start is None:
            start = stamp
        t = (stamp - start).total_seconds()
        if t < previous:
            raise TraceError(
                source,
                line,
                f"rows are not sorted by TIMESTAMP ({row[idx[0]].strip()} is "
                f"{previous - t:.3f} s before the row above)",
            )
        previous = t
        times.append(t)
        prompts.append(_parse_tokens(row[idx[1]], COLUMNS[1], source, line))
        outputs.append(_parse_tokens(row[idx[2]], COLUMNS[2], source, line))
    if start is None:
        raise TraceError(source, 2, "the trace has a header but no requests")
    return Trace(
        arrival_s=np.asarray(times, dtype=np.float64),
        prompt_tokens=np.asarray(prompts, dtype=np.int64),
        output_tokens=np.asarray(outputs, dtype=np.int64),
        start=start,
        source=source,
    )


def _json_kind(value: object) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "true or false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _mooncake_row(text: str, source: str, line: int) -> dict[str, object]:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        raise TraceError(source, line, f"not JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(row, dict):
        raise TraceError(source, line, f"expected a JSON object, got {_json_kind(row)}")
    missing = [k for k in MOONCAKE_KEYS if k not in row]
    if missing:
        raise TraceError(source, line, f"missing key(s) {', '.join(missing)}")
    if "hash_ids" in row and not isinstance(row["hash_ids"], list):
        raise TraceError(source, line, f"hash_ids is {_json_kind(row['hash_ids'])}, not a list")
    return row


def _whole(value: object, key: str, source: str, line: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceError(source, line, f"{key} {value!r} is not a whole number")
    if value < 0:
        raise TraceError(source, line, f"{key} is negative ({value})")
    return value


def parse_mooncake(text: str, source: str = "<trace>") -> Trace:
    """Parse Mooncake JSONL text, or raise TraceError naming the line and the reason."""
    stamps: list[int] = []
    prompts: list[int] = []
    outputs: list[int] = []
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        row = _mooncake_row(raw, source, line)
        ms = _whole(row["timestamp"], "timestamp", source, line)
        if stamps and ms < stamps[-1]:
            raise TraceError(
                source,
                line,
                f"rows are not sorted by timestamp ({ms} ms is "
                f"{stamps[-1] - ms} ms before the row above)",
            )
        stamps.append(ms)
        prompts.append(_whole(row["input_length"], "input_length", source, line))
        outputs.append(_whole(row["output_length"], "output_length", source, line))
    if not stamps:
        raise TraceError(source, 1, "the file has no requests")
    ms_arr = np.asarray(stamps, dtype=np.int64)
    return Trace(
        arrival_s=(ms_arr - ms_arr[0]).astype(np.float64) / 1000.0,
        prompt_tokens=np.asarray(prompts, dtype=np.int64),
        output_tokens=np.asarray(outputs, dtype=np.int64),
        start=MOONCAKE_EPOCH + timedelta(milliseconds=stamps[0]),
        source=source,
    )


def load_trace(path: str | Path) -> Trace:
    """Read a trace file (Mooncake if `.jsonl`, else Azure CSV), or raise SimInputError."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise SimInputError(f"{p}: cannot read the trace: {err.strerror or err}") from err
    parse = parse_mooncake if p.suffix.lower() == ".jsonl" else parse_trace
    return parse(text, str(p))


def scale_trace(
    trace: Trace,
    time_scale: float = 1.0,
    rate_scale: float = 1.0,
    seed: int = 0,
    jitter_s: float = 1.0,
) -> Trace:
    """Replay `time_scale` times faster and with `rate_scale` times the requests.

    Rate scaling is deterministic for a seed: each request is kept `floor(rate_scale)`
    times, plus once more with probability `frac(rate_scale)` (so a scale below 1 thins
    the trace); copies after the first are shifted by up to `jitter_s` trace seconds so
    that they do not arrive in the same instant.
    """
    if time_scale <= 0 or rate_scale <= 0:
        raise SimInputError(
            f"time_scale and rate_scale must be positive, got {time_scale} and {rate_scale}"
        )
    arrival, prompt, output = trace.arrival_s, trace.prompt_tokens, trace.output_tokens
    if rate_scale != 1.0:
        rng = np.random.default_rng(seed)
        whole = int(np.floor(rate_scale))
        copies = np.full(len(trace), whole, dtype=np.int64)
        copies += rng.random(len(trace)) < (rate_scale - whole)
        index = np.repeat(np.arange(len(trace)), copies)
        first = np.ones(index.size, dtype=bool)
        first[1:] = index[1:] != index[:-1]
        shift = np.where(first, 0.0, rng.random(index.size) * jitter_s)
        arrival = arrival[index] + shift
        order = np.argsort(arrival, kind="stable")
        arrival, prompt, output = arrival[order], prompt[index][order], output[index][order]
        if arrival.size == 0:
            raise SimInputError(f"rate_scale {rate_scale} left no requests in the trace")
    return Trace(
        arrival_s=(arrival - (arrival[0] if arrival.size else 0.0)) / time_scale,
        prompt_tokens=prompt,
        output_tokens=output,
        start=trace.start,
        source=trace.source,
    )


def slice_trace(trace: Trace, start_s: float, duration_s: float | None = None) -> Trace:
    """The requests arriving in `[start_s, start_s + duration_s)`, re-based to 0."""
    end = np.inf if duration_s is None else start_s + duration_s
    keep = (trace.arrival_s >= start_s) & (trace.arrival_s < end)
    if not keep.any():
        raise SimInputError(f"no requests between {start_s} s and {end} s of {trace.source}")
    arrival = trace.arrival_s[keep]
    first = float(arrival[0])
    return Trace(
        arrival_s=arrival - first,
        prompt_tokens=trace.prompt_tokens[keep],
        output_tokens=trace.output_tokens[keep],
        start=trace.start + timedelta(seconds=first),
        source=trace.source,
    )


def peak_rate(trace: Trace, window_s: float = 60.0) -> float:
    """Highest mean arrival rate (req/s) over any window of `window_s` seconds."""
    if not len(trace):
        return 0.0
    ends = np.searchsorted(trace.arrival_s, trace.arrival_s + window_s, side="left")
    return float((ends - np.arange(len(trace))).max()) / window_s
