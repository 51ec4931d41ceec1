"""A real Prometheus server for tests: a generated config, a temp storage dir, a loopback port."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from controller.prometheus_config import write_scrape_config


class PrometheusServer:
    """Starts and stops one `prometheus` process by its pid; its data survives a restart."""

    def __init__(self, config: dict[str, Any], workdir: Path, port: int) -> None:
        exe = shutil.which("prometheus")
        assert exe, "prometheus is missing: run scripts/ensure-prometheus.sh"
        self.exe = exe
        self.port = port
        self.workdir = workdir
        self.config_path = write_scrape_config(workdir / "prometheus.yml", config)
        self.storage = workdir / "data"
        self.log = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server and wait until it is ready."""
        assert self.proc is None, "already running"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.exe,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.storage}",
                    "--storage.tsdb.retention.time=2h",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(
            f"prometheus not ready in {timeout_s}s: {self.log.read_text()[-2000:]}"
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it to exit."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def query(self, expr: str) -> dict[str, Any]:
        """The raw JSON answer of an instant query."""
        response = httpx.post(f"{self.url}/api/v1/query", data={"query": expr}, timeout=10)
        return dict(response.json())

    def wait_until(
        self, expr: str, ok: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 60.0
    ) -> list[dict[str, Any]]:
        """Poll `expr` until `ok(result)`; returns that result."""
        deadline = time.monotonic() + timeout_s
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            answer = self.query(expr)
            result = list(answer.get("data", {}).get("result", []))
            if answer.get("status") == "success" and ok(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting on {expr}; last answer {result}")
