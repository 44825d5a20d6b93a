"""Concurrent vends through the gateway of a local credvend: errors and latency figures.

Used by the load test (tests/e2e/test_load_e2e.py) and ``make bench`` (bench/bench_load.py).
Loopback only: every request goes to the LocalStack on 127.0.0.1. Nothing here asserts a
time; it measures, and the caller decides what an error is worth (zero is the requirement).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
from botocore.credentials import Credentials

from credvend_local.sigv4 import signed_request


@dataclass(frozen=True)
class LoadResult:
    requests: int
    concurrency: int
    latencies: list[float]  # seconds, of the successful vends
    errors: Counter[str] = field(default_factory=Counter)  # "HTTP 502", "ConnectionError"... (never a secret)
    access_key_ids: list[str] = field(default_factory=list)  # of the vended credentials
    wall_seconds: float = 0.0
    environments: int | None = None  # Lambda processes running after the burst (None: unknown)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))  # nearest rank
        return ordered[rank]

    def summary(self) -> str:
        errors = ", ".join(f"{count} x {kind}" for kind, count in self.errors.most_common()) or "none"
        throughput = len(self.latencies) / self.wall_seconds if self.wall_seconds else float("nan")
        lines = [
            f"{self.requests} vends, {self.concurrency} at once: {len(self.latencies)} ok, errors: {errors}",
            f"latency p50 {self.percentile(50) * 1000:.0f} ms, p99 {self.percentile(99) * 1000:.0f} ms, "
            f"max {max(self.latencies, default=0) * 1000:.0f} ms, "
            f"mean {statistics.fmean(self.latencies) * 1000 if self.latencies else 0:.0f} ms",
            f"wall {self.wall_seconds:.1f} s, {throughput:.1f} vends/s",
        ]
        if self.environments is not None:
            lines.append(f"Lambda execution environments running afterwards: {self.environments}")
        return "\n".join(lines)


def vend_burst(
    api_url: str,
    credentials: Credentials,
    *,
    requests_total: int = 200,
    concurrency: int = 200,
    role: str = "reports-reader",
    timeout: float = 60.0,
    localstack_pid: int | None = None,
) -> LoadResult:
    """``requests_total`` signed ``GET /credentials/{role}``, ``concurrency`` threads released at once."""
    url = f"{api_url}/credentials/{role}"
    start = threading.Barrier(min(concurrency, requests_total))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    keys: list[str] = []

    def one(index: int) -> None:
        if index < start.parties:
            start.wait(timeout=120)  # the first wave leaves together: a real burst, not a ramp
        began = time.perf_counter()
        try:
            response = signed_request("GET", url, credentials, timeout=timeout)
        except requests.RequestException as exc:
            with lock:
                errors[type(exc).__name__] += 1
            return
        elapsed = time.perf_counter() - began
        with lock:
            if response.status_code == 200:
                latencies.append(elapsed)
                keys.append(response.json()["Credentials"]["AccessKeyId"])
            else:
                errors[f"HTTP {response.status_code} {_error_code(response)}"] += 1

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests_total)))
    wall = time.perf_counter() - began
    return LoadResult(
        requests=requests_total,
        concurrency=concurrency,
        latencies=latencies,
        errors=errors,
        access_key_ids=keys,
        wall_seconds=wall,
        environments=None if localstack_pid is None else lambda_processes(localstack_pid),
    )


BOUND_PATH = "/_credvend/lambda/environment-bound"


def bound_environments(endpoint: str, max_environments: int | None) -> None:
    """At most ``max_environments`` execution environments per function (None: no bound); the
    other invocations queue for one. See credvend_local/plugin/credvend_localstack/lambda_bound.py."""
    response = requests.post(f"{endpoint}{BOUND_PATH}", json={"max_environments": max_environments}, timeout=10)
    response.raise_for_status()


def warm_up(api_url: str, credentials: Credentials, environments: int, role: str = "reports-reader") -> LoadResult:
    """Start ``environments`` execution environments (cold starts, not part of the figures)."""
    return vend_burst(api_url, credentials, requests_total=environments, concurrency=environments, role=role)


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        error = body.get("Error")
        if isinstance(error, dict):
            return str(error.get("Code", ""))
        return str(body.get("message", ""))[:80]
    return ""


def lambda_processes(localstack_pid: int) -> int:
    """Function processes (one per execution environment) in LocalStack's process group."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != localstack_pid:
                continue
            if b"lambda_runtime" in (entry / "cmdline").read_bytes():
                count += 1
        except (OSError, ProcessLookupError):
            continue
    return count
