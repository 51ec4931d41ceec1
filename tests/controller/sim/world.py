"""Small fleets, profiles and traces with answers known by hand."""

from __future__ import annotations

from typing import Any

from controller.config import AppConfig, GovernorConfig, parse_config
from controller.sim.profile import Profile, parse_profile


def config(slo_ms: float = 150.0, max_replicas: int = 8, initial: int = 1,
           scaling: dict[str, Any] | None = None, **slo: Any) -> GovernorConfig:
    """One application `app` with one version `v1` on `gpu` priced at 2.0 per hour."""
    return parse_config({
        "interval_s": 5,
        "window_s": 30,
        "prices": {"gpu": 2.0},
        "applications": [{
            "name": "app",
            "slo": {"latency_p95_ms": slo_ms, **slo},
            "versions": [{"name": "v1", "deployment": "model_v1", "min_replicas": 1,
                          "max_replicas": max_replicas, "initial_replicas": initial}],
            "resources": {"gpu_type": "gpu", "gpus_per_replica": 1},
            "scaling": scaling or {},
        }],
    })


def app(**kwargs: Any) -> AppConfig:
    """The application of `config(**kwargs)`."""
    return config(**kwargs).applications[0]


def encoder(service_ms: float = 100.0, max_batch: int = 1, wait_ms: float = 0.0,
            startup_s: float = 30.0, queue_limit: int = 1000, **extra: Any) -> Profile:
    """An encoder whose batch of one takes `service_ms` (batches cost the same per item)."""
    rate = 1000.0 / service_ms
    return parse_profile({
        "name": "toy-encoder", "kind": "encoder", "model": "toy", "hardware": "toy",
        "gpu_type": "gpu", "source": "made up for tests", "startup_s": startup_s,
        "encoder": {"throughput_seq_per_s": {1: rate}},
        "serving": {"max_batch_size": max_batch, "batch_wait_ms": wait_ms,
                    "max_ongoing_requests": max_batch, "queue_limit": queue_limit},
        **extra,
    })


def generation(prefill_ms_per_token: float = 0.1, step_ms: float = 10.0,
               per_seq_ms: float = 0.0, max_batch: int = 8, startup_s: float = 30.0) -> Profile:
    """A decoder with a flat decode step of `step_ms` (plus `per_seq_ms` per sequence)."""
    return parse_profile({
        "name": "toy-llm", "kind": "generation", "model": "toy", "hardware": "toy",
        "gpu_type": "gpu", "source": "made up for tests", "startup_s": startup_s,
        "generation": {"prefill_ms_fixed": 0.0, "prefill_ms_per_token": prefill_ms_per_token,
                       "decode_step_ms_fixed": step_ms, "decode_step_ms_per_seq": per_seq_ms,
                       "decode_step_ms_per_context_token": 0.0},
        "serving": {"max_batch_size": max_batch, "queue_limit": 1000},
    })
