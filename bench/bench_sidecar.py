"""Sidecar figures: upstream vends per 1,000 boto3 credential fetches, and cached-answer latency.

Two runs, both against a fake credvend API on loopback that counts vends and grants
1-hour credentials:

1. **The real command.** ``credvend serve`` runs as its own process; 1,000 fresh boto3
   sessions resolve credentials through ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and
   ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` (each one is a real HTTP fetch from the sidecar,
   as every new process or session of a service would make). Then the latency of cached
   answers is measured with a plain HTTP client, on a kept-alive connection and with a new
   connection per request (what botocore's container provider does).
2. **One simulated hour.** The same server and cache in-process, with a fake clock shared
   by the cache and the fake API: 1,000 boto3 fetches spread evenly over 3,600 s, so the
   refresh schedule is exercised. Every credential boto3 received is checked to have more
   than botocore's 15-minute advisory window left.

Targets (issue 6): at most 2 upstream vends for a 1-hour grant; median cached answer < 1 ms.
Exit status 1 if the vend target is missed (deterministic); latency is reported, and
enforced only with ``--strict`` (shared CI machines are noisy).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO, REPO / "client", REPO / "lambda_src"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import boto3  # noqa: E402

from credvend_client.api import CredvendClient  # noqa: E402
from credvend_client.cache import REFRESH_BEFORE_EXPIRY, CredentialCache  # noqa: E402
from credvend_client.sidecar import SidecarServer, new_token, upstream_fetch, write_token_file  # noqa: E402
from tests.client.client_fakes import FakeCredvend  # noqa: E402

ROLE = "reports-reader"
FETCHES = 1000
GRANT_SECONDS = 3600
MAX_VENDS = 2
TARGET_MEDIAN_MS = 1.0
BOTOCORE_ADVISORY_WINDOW = 15 * 60
SOURCE_ENV = {  # the sidecar's own identity; the fake API does not check signatures
    "AWS_ACCESS_KEY_ID": "AKIDBENCHSOURCE00001",
    "AWS_SECRET_ACCESS_KEY": "bench-source-secret",
    "AWS_REGION": "us-east-1",
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


@contextmanager
def sdk_environment(url: str, token_file: Path, workdir: Path) -> Iterator[None]:
    """The two variables a service sets, and nothing else that could resolve credentials."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ.update(
        {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
            "AWS_CONFIG_FILE": str(workdir / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def boto3_fetch() -> tuple[datetime, float]:
    """One credential resolution by a fresh boto3 session: (the expiry it got, seconds taken)."""
    started = time.perf_counter()
    credentials = boto3.Session().get_credentials()
    assert credentials is not None and credentials.method == "container-role", credentials
    credentials.get_frozen_credentials()
    return credentials._expiry_time, time.perf_counter() - started


def cached_latencies(port: int, token: str, count: int, *, keep_alive: bool) -> list[float]:
    samples = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Authorization": token}
    for _ in range(count):
        if not keep_alive:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        started = time.perf_counter()
        connection.request("GET", f"/roles/{ROLE}", headers=headers)
        response = connection.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
        assert response.status == 200, response.status
        if not keep_alive:
            connection.close()
    connection.close()
    return samples


def serve_command() -> list[str]:
    installed = Path(sys.executable).with_name("credvend")
    if installed.exists():
        return [str(installed)]
    found = shutil.which("credvend")
    return [found] if found else [sys.executable, "-m", "credvend_client.cli"]


@dataclass(frozen=True)
class RealRun:
    command: str
    vends: int
    boto3_fetch: list[float]
    keep_alive: list[float]
    new_connection: list[float]


@dataclass(frozen=True)
class SimulatedHour:
    vends: int
    min_remaining: float


def run_real_command(workdir: Path) -> RealRun:
    with FakeCredvend(lifetime=GRANT_SECONDS) as fake:
        env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "CREDVEND_"))}
        env.update(SOURCE_ENV, CREDVEND_ENDPOINT=fake.url)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "client"), str(REPO / "lambda_src")])
        token_file = workdir / "token"
        command = [*serve_command(), "serve", "--port", "0", "--role", ROLE, "--token-file", str(token_file)]
        log = (workdir / "serve.log").open("w")
        # the command is this interpreter's own credvend entry point, with fixed arguments
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log, text=True)  # noqa: S603
        try:
            assert process.stdout is not None
            ready = json.loads(process.stdout.readline())
            url = f"http://127.0.0.1:{ready['port']}/roles/{ROLE}"
            with sdk_environment(url, token_file, workdir):
                fetch_times = [boto3_fetch()[1] for _ in range(FETCHES)]
            token = token_file.read_text()
            keep_alive = cached_latencies(ready["port"], token, 5000, keep_alive=True)
            fresh_connection = cached_latencies(ready["port"], token, 2000, keep_alive=False)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=10)
            log.close()
        shown = " ".join([Path(command[0]).name, *command[1:3]])
        return RealRun(shown, fake.vends, fetch_times, keep_alive, fresh_connection)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def run_simulated_hour(workdir: Path) -> SimulatedHour:
    clock = FakeClock()
    with FakeCredvend(lifetime=GRANT_SECONDS, clock=clock) as fake:
        # signs with the bench's own source identity, never with anything served
        client = CredvendClient(fake.url, region=SOURCE_ENV["AWS_REGION"], credentials=_source_credentials)
        cache = CredentialCache(upstream_fetch(client), clock=clock)
        token = new_token()
        server = SidecarServer(0, cache=cache, token=token, allowed_roles=[ROLE])
        server.start_in_thread()
        token_file = write_token_file(workdir / "token-simulated", token)
        remaining: list[float] = []
        step = GRANT_SECONDS / FETCHES
        try:
            with sdk_environment(server.role_url(ROLE), token_file, workdir):
                for _ in range(FETCHES):
                    expiry, _seconds = boto3_fetch()
                    remaining.append(expiry.timestamp() - clock.now)
                    clock.now += step
        finally:
            server.shutdown()
            server.server_close()
        return SimulatedHour(fake.vends, min(remaining))


def _source_credentials() -> object:
    from botocore.credentials import Credentials

    return Credentials(SOURCE_ENV["AWS_ACCESS_KEY_ID"], SOURCE_ENV["AWS_SECRET_ACCESS_KEY"]).get_frozen_credentials()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="also fail when the latency target is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="credvend-bench-") as temp:
        workdir = Path(temp)
        real = run_real_command(workdir)
        hour = run_simulated_hour(workdir)

    vends_ok = real.vends <= MAX_VENDS and hour.vends <= MAX_VENDS
    latency_ok = statistics.median(real.keep_alive) < TARGET_MEDIAN_MS / 1000

    def figures(samples: list[float], *fractions: float) -> str:
        tail = ", ".join(f"p{round(f * 100)} {ms(percentile(samples, f))}" for f in fractions)
        return f"median {ms(statistics.median(samples))}, {tail}"

    print(f"credvend sidecar benchmark ({FETCHES} boto3 credential fetches, {GRANT_SECONDS} s grant)")
    print(f"  the real `{real.command}` process, all fetches within seconds:")
    print(f"    upstream vends                        {real.vends}   (target <= {MAX_VENDS})")
    print(f"    boto3 fetch (new session each)        {figures(real.boto3_fetch, 0.95)}")
    print(
        f"    cached answer, kept-alive connection  {figures(real.keep_alive, 0.95, 0.99)}"
        f"   (target median < {TARGET_MEDIAN_MS:g} ms)"
    )
    print(f"    cached answer, new connection         {figures(real.new_connection, 0.95, 0.99)}")
    print(f"  one simulated hour (fake clock, a boto3 fetch every {GRANT_SECONDS / FETCHES:g} s):")
    print(f"    upstream vends                        {hour.vends}   (target <= {MAX_VENDS})")
    print(
        f"    least time left on a served credential {hour.min_remaining / 60:.1f} min"
        f"   (botocore refreshes from {BOTOCORE_ADVISORY_WINDOW // 60} min;"
        f" sidecar margin {REFRESH_BEFORE_EXPIRY // 60} min)"
    )
    print(f"  result: vends {'PASS' if vends_ok else 'FAIL'}, latency {'PASS' if latency_ok else 'MISS'}")
    if not vends_ok or (args.strict and not latency_ok):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
