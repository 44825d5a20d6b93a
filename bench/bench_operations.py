"""``make bench``: figures for the operating features (CONTRACT §11). Prints, asserts nothing.

* dry run vs vend, warm, through ``credvend.handler.handler`` in one process, with an STS
  port that answers at once: what a dry run costs the function itself (no STS round trip).
* ``credvend policy explain``: a fresh process, start to answer (the reviewer's command).
* the LocalStack revocation check (``identity_deny.explicit_deny``) per request signed by a
  session of a role carrying N revoked callers: what the fidelity layer adds to every call.

``python bench/bench_operations.py [--runs N]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "lambda_src", REPO_ROOT / "credvend_local" / "plugin"):
    sys.path.insert(0, str(path))

POLICY = REPO_ROOT / "tests" / "e2e" / "policy.e2e.yaml"
PRINCIPAL = "arn:aws:iam::000000000000:user/credvend-e2e-user"


class Context:
    function_name = "credvend"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:credvend"
    memory_limit_in_mb = 256
    aws_request_id = "bench"
    log_group_name = "/aws/lambda/credvend"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 20_000


class InstantSts:
    max_call_seconds = 1.0

    def caller_identity_arn(self) -> str:
        return "arn:aws:sts::000000000000:assumed-role/credvend-fn/credvend"

    def assume_role(self, **kwargs: Any) -> Any:
        from credvend.domain.formats import AssumedRole, Credentials

        return AssumedRole(
            credentials=Credentials(
                access_key_id="ASIABENCH",
                secret_access_key=SecretStr("secret"),
                session_token=SecretStr("token"),
                expiration=datetime.now(UTC) + timedelta(hours=1),
            ),
            assumed_role_arn=f"arn:aws:sts::000000000000:assumed-role/ReportsReader/{kwargs['session_name']}",
            assumed_role_id="AROA:x",
            request_id="bench",
        )


def _event(dry_run: bool) -> dict[str, Any]:
    body = {"role": "reports-reader", "duration_seconds": 43200, "dry_run": dry_run}
    return {
        "resource": "/credentials",
        "path": "/credentials",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"requestId": "bench", "identity": {"userArn": PRINCIPAL}, "stage": "v1"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def handler_figures(runs: int) -> dict[str, float]:
    import contextlib
    import io

    from credvend import handler as handler_module
    from credvend.settings import Settings

    os.environ["CREDVEND_POLICY_FILE"] = str(POLICY)
    os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "bench"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # decision lines cost the same on both paths
    handler_module.reset_runtime(settings=Settings.from_env(), sts=InstantSts())
    events = {"vend": _event(False), "dry_run": _event(True)}
    times: dict[str, list[float]] = {name: [] for name in events}
    with contextlib.redirect_stdout(io.StringIO()) as sink:
        for event in events.values():  # warm both paths
            handler_module.handler(event, Context())
        for _ in range(runs):
            for name, event in events.items():  # interleaved
                started = time.perf_counter()
                handler_module.handler(event, Context())
                times[name].append(time.perf_counter() - started)
            sink.seek(0)
            sink.truncate()
    return {name: statistics.median(values) * 1e6 for name, values in times.items()}


def explain_figure(runs: int) -> float:
    credvend = str(Path(sys.executable).with_name("credvend"))
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(  # noqa: S603 - our own command, fixed arguments
            [credvend, "policy", "explain", str(POLICY), "--role", "reports-reader", "--principal", PRINCIPAL],
            check=True,
            capture_output=True,
        )
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def revocation_figures(runs: int) -> dict[int, float]:
    from credvend_localstack.identity_deny import Session, explicit_deny

    from credvend_policy.revocation import revocation_statement, with_revocation

    now = datetime.now(UTC)
    session = Session(
        arn="arn:aws:sts::000000000000:assumed-role/ReportsReader/keep",
        account="000000000000",
        role_arn="arn:aws:iam::000000000000:role/ReportsReader",
        source_identity="keep",  # not revoked: every statement is evaluated
        issued_at=now - timedelta(minutes=5),
    )
    figures = {}
    for count in (0, 1, 10, 40):
        document = None
        for index in range(count):
            document = with_revocation(document, revocation_statement(f"caller-{index}", now))
        policies = {"credvend-revocations": json.dumps(document)} if document else {}
        started = time.perf_counter()
        for _ in range(runs):
            assert explicit_deny(policies, "s3:GetObject", session) is None
        figures[count] = (time.perf_counter() - started) / runs * 1e6
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory():
        warm = handler_figures(args.runs)
    print(f"operations: warm handler, STS answering at once (median of {args.runs})")
    print(f"  vend     {warm['vend']:8.1f} us")
    print(f"  dry run  {warm['dry_run']:8.1f} us   (no AssumeRole; on AWS a vend adds STS's round trip)")
    print(f"operations: credvend policy explain, process start to answer: {explain_figure(5):.0f} ms (median of 5)")
    print("operations: LocalStack revocation check per request, by revoked callers on the role")
    for count, micros in revocation_figures(args.runs).items():
        print(f"  {count:3d} revoked  {micros:8.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
