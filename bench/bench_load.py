"""Load figures (issue 9, item 13): concurrent vends through the gateway of credvend on LocalStack.

Starts its own LocalStack (instance ``bench-load``), deploys the real stack with
``tests/e2e/policy.e2e.yaml`` and the stage throttle raised above the burst (on AWS the
default 50 rps / 100 burst would answer part of a 200-request burst with 429; LocalStack does
not enforce stage throttling, so this only keeps the deployment honest), creates an IAM user
caller, bounds the function to ``--environments`` execution environments (other invocations
queue for one: see credvend_local/plugin/credvend_localstack/lambda_bound.py) and warms them,
then releases ``--concurrency`` signed vends at once
(``--requests`` in all), loopback only. Prints errors, p50/p99/max latency, throughput and how
many execution environments (one process each, on the host executor) LocalStack started.

``python bench/bench_load.py [--requests 200] [--concurrency 200] [--json PATH]``. LocalStack
is stopped at the end whatever happens. Exits non-zero if a vend failed (zero errors is the
requirement) or something fails to run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from credvend_local import launcher  # noqa: E402
from credvend_local.deploy import deploy  # noqa: E402
from credvend_local.identities import create_user  # noqa: E402
from credvend_local.load import bound_environments, vend_burst, warm_up  # noqa: E402

INSTANCE = "bench-load"
POLICY_FILE = REPO_ROOT / "tests" / "e2e" / "policy.e2e.yaml"
CALLER_USER = "credvend-e2e-user"  # caller e2e-user, granted reports-reader
# Above any burst this bench sends: the stage must not be what refuses a vend.
THROTTLE = {"throttle_rate_limit": "2000", "throttle_burst_limit": "2000"}
# Each execution environment is a process on this machine: 200 cold starts at once on 2 cores
# take minutes and time out (measured: 149 of 200 vends timed out after 60 s, 81 environments).
# So at most this many environments run; the other vends queue for one (lambda_bound.py).
ENVIRONMENTS = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument(
        "--environments", type=int, default=ENVIRONMENTS, help="execution environments (0: as many as asked)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    started = time.monotonic()
    instance = launcher.start(INSTANCE, tie_to_parent=True, stop_at_exit=True)
    try:
        print(f"LocalStack up in {time.monotonic() - started:.1f} s", flush=True)
        with tempfile.TemporaryDirectory() as workdir:
            deployment = deploy(instance.endpoint, policy_file=POLICY_FILE, workdir=Path(workdir), context=THROTTLE)
        print(f"deployed in {deployment.seconds:.1f} s", flush=True)
        caller = create_user(instance.endpoint, CALLER_USER)
        environments = args.environments or None
        bound_environments(instance.endpoint, environments)
        warm = warm_up(deployment.api_url, caller, environments or 1)
        if warm.errors:
            print(f"warm-up failed: {dict(warm.errors)}", file=sys.stderr)
            return 1
        print(f"{len(warm.latencies)} environments warmed; burst with at most {environments or 'unbounded'}")
        result = vend_burst(
            deployment.api_url,
            caller,
            requests_total=args.requests,
            concurrency=args.concurrency,
            localstack_pid=instance.pid,
        )
        print(result.summary(), flush=True)
        unique = len(set(result.access_key_ids))
        print(f"distinct credentials: {unique} of {len(result.access_key_ids)}", flush=True)
        if args.json:
            figures = {
                "requests": result.requests,
                "concurrency": result.concurrency,
                "ok": len(result.latencies),
                "errors": dict(result.errors),
                "p50_ms": round(result.percentile(50) * 1000, 1),
                "p99_ms": round(result.percentile(99) * 1000, 1),
                "max_ms": round(max(result.latencies, default=0) * 1000, 1),
                "wall_seconds": round(result.wall_seconds, 2),
                "environments": result.environments,
                "max_environments": environments,
            }
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return 0 if not result.errors and unique == len(result.access_key_ids) == args.requests else 1
    finally:
        instance.stop()
        launcher.remove_instance(INSTANCE)


if __name__ == "__main__":
    sys.exit(main())
