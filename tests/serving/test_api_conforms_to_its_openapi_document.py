"""Schemathesis against the live routers: what their /openapi.json promises, they keep.

Schemathesis reads each test application's document from the live router and sends what
it derives from it: boundary values and wrong methods (coverage), then valid and invalid
bodies (fuzzing). Every check must hold: no 5xx, every status, content type, header and
body as documented, invalid data refused, valid data accepted where the document can
promise it, and every error body in OpenAI's format (tests/serving/openai_error_check.py).
Deterministic generation, a fixed number of examples and no crash cache carried between
runs make the run reproducible and bound its time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving.conftest import GENERATION_PREFIX, ServingApps

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 200
"""Examples per operation in the fuzzing phase; the coverage phase adds its own."""
MIN_CASES = 250
"""Fewer cases than this means the document lost operations or generation broke."""
RUN_TIMEOUT_S = 420
CONFIG = "[cache]\nenabled = false\n"


def run_schemathesis(base_url: str, workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the schemathesis CLI against one router's document; its output says what ran."""
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        f"--config-file={config}",
        "run",
        f"{base_url}/openapi.json",
        f"--url={base_url}",
        "--checks=all",
        "--phases=examples,coverage,fuzzing",
        f"--max-examples={MAX_EXAMPLES}",
        "--generation-deterministic",
        "--workers=1",
        "--request-timeout=60",
        "--no-color",
        *extra,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.serving.openai_error_check",
    }
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )


def _assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    counted = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counted is not None and counted[1] == counted[2], result.stdout[-3000:]
    assert int(counted[1]) >= MIN_CASES, result.stdout[-3000:]


def test_embeddings_router_keeps_its_document(serving_apps: ServingApps, tmp_path: Path) -> None:
    result = run_schemathesis(serving_apps.cluster.http_url, tmp_path)
    _assert_passed(result)


def test_generation_router_keeps_its_document(serving_apps: ServingApps, tmp_path: Path) -> None:
    # Whether a valid prompt fits the context is known only to the version's tokenizer, so
    # a valid body may still be refused there: that one check cannot hold for generation.
    result = run_schemathesis(
        f"{serving_apps.cluster.http_url}{GENERATION_PREFIX}",
        tmp_path,
        "--exclude-checks=positive_data_acceptance",
    )
    _assert_passed(result)
