"""One daemon's leader election as a process a test can kill: it prints whether it leads.

It runs `LeaderElector` the way the daemon does (`start`, then `is_leader` every tick),
with the system clock, and prints one JSON line per sample: `{"t": <unix time>, "leader":
<bool>}`. SIGTERM stops it, releasing the Lease; SIGKILL is a crash.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from types import FrameType

from kubernetes import client as k8s

from controller.clock import SystemClock
from kuberay.connect import api_client
from kuberay.leader import LeaderElector

SAMPLE_S = 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: where the Lease is, who this is, and the timings."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--lease", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--lease-duration", type=float, required=True)
    parser.add_argument("--renew-period", type=float, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Join the election and report leadership until SIGTERM."""
    args = parse_args(argv)
    api = api_client(args.kubeconfig)
    elector = LeaderElector(
        k8s.CoordinationV1Api(api),
        args.namespace,
        args.lease,
        args.identity,
        SystemClock(),
        lease_duration_s=args.lease_duration,
        renew_period_s=args.renew_period,
        request_timeout_s=args.renew_period,
    )
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    elector.start()
    while not stop.is_set():
        print(json.dumps({"t": time.time(), "leader": elector.is_leader()}), flush=True)
        stop.wait(SAMPLE_S)
    elector.close()
    api.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
