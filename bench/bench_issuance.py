"""``make bench``: ``web_identity`` vs ``assume_role`` issuance, cold and warm, in one run.

Both go through the built function asset (``infra.bundling``, as on Lambda: ``python -S``,
only a boto3 on the path) against the same local AWS over HTTP: moto's server mode, which
serves STS (AssumeRole, AssumeRoleWithWebIdentity) and KMS (an RSA_2048 key: GetPublicKey,
Sign). A ``web_identity`` vend makes one more round trip than an ``assume_role`` vend (KMS
Sign; plus one GetPublicKey per container), and signs a JWS. Figures:

* cold: a fresh process doing import + first vend, for each issuance (median of several
  runs, interleaved). The ``assume_role`` figure is the one ``bench_function.py`` compares
  with a hand-written function; here it shows what the web_identity code does NOT cost it.
* warm: per-vend time through ``credvend.handler.handler`` for each issuance, interleaved
  call by call in one process. Target: web_identity within 1.5x of assume_role.

Moto's KMS and STS run in this machine's CPU: on AWS a KMS Sign of an RSA_2048 key is a
network round trip of a few milliseconds more, which no local figure shows.

``python bench/bench_issuance.py [--runs N] [--warm N] [--json PATH]``; exits non-zero only
if something fails to run, not when a target is missed (it says so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from _drivers import COLD_CREDVEND, EVENT_SETUP  # noqa: E402
from bench_function import ACCOUNT, boto3_only_path, run, start_sts  # noqa: E402

from infra.bundling import build_function_bundle  # noqa: E402

WARM_TARGET = 1.5
ASSUME_ROLE, WEB_IDENTITY = "reports-reader", "batch-reader"
BENCH_POLICY = f"""\
version: 1
roles:
  {ASSUME_ROLE}:
    create: true
    max_session_duration: 43200
  {WEB_IDENTITY}:
    create: true
    max_session_duration: 43200
    issuance: web_identity
callers:
  billing-api:
    iam_principals: [arn:aws:iam::{ACCOUNT}:role/billing-api-task]
    grants:
      - role: {ASSUME_ROLE}
        max_duration_seconds: 43200
      - role: {WEB_IDENTITY}
        max_duration_seconds: 43200
"""

WARM_BOTH = (
    EVENT_SETUP
    + r"""
import statistics
from credvend.handler import handler
ctx = Ctx()
events = {name: event({"role": role}) for name, role in (("assume_role", os.environ["ASSUME_ROLE"]),
                                                          ("web_identity", os.environ["WEB_IDENTITY"]))}
def vend(ev):
    result = handler(ev, ctx)
    assert result["statusCode"] == 200, result
for ev in events.values():
    for _ in range(20): vend(ev)
samples = {name: [] for name in events}
cpu_samples = {name: [] for name in events}
clock, cpu_clock = time.perf_counter, time.thread_time
for _ in range(int(os.environ["BENCH_WARM_N"])):
    for name, ev in events.items():
        c, t = cpu_clock(), clock(); vend(ev)
        samples[name].append(clock() - t); cpu_samples[name].append(cpu_clock() - c)
open(os.environ["BENCH_OUT"], "a").write(json.dumps({
    "wall": {n: statistics.median(v) for n, v in samples.items()},
    "cpu": {n: statistics.median(v) for n, v in cpu_samples.items()}}) + "\n")
"""
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="cold starts per issuance")
    parser.add_argument("--warm", type=int, default=200, help="warm calls per issuance")
    parser.add_argument("--arch", default="x86_64" if os.uname().machine in ("x86_64", "AMD64") else "arm64")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    cache = REPO_ROOT / ".cache" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    policy_file = cache / "issuance-policy.yaml"
    policy_file.write_text(BENCH_POLICY)
    bundle = build_function_bundle(policy_file=policy_file, architecture=args.arch)
    boto3_dir = boto3_only_path(cache)
    server, endpoint = start_sts()
    try:
        import boto3

        kms = boto3.client(
            "kms",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIABENCHEXAMPLE0000",
            aws_secret_access_key="bench-secret",  # noqa: S106 - moto's fake account
        )
        key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        base_env = {
            "PATH": "/usr/bin:/bin",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "AKIABENCHEXAMPLE0000",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": "credvend",
            "CREDVEND_POLICY_FILE": str(bundle / "policy.json"),
            "CREDVEND_ISSUER": "https://abc123.execute-api.us-east-1.amazonaws.com/v1",
            "CREDVEND_SIGNING_KEY": key_id,
            "PYTHONDONTWRITEBYTECODE": "1",
            "BENCH_DIR": str(REPO_ROOT / "bench"),
            "ASSUME_ROLE": ASSUME_ROLE,
            "WEB_IDENTITY": WEB_IDENTITY,
            "PYTHONPATH": f"{bundle}{os.pathsep}{boto3_dir}",
        }
        with tempfile.TemporaryDirectory(prefix="credvend-bench-") as scratch:
            out = Path(scratch) / "out.txt"

            def cold(body: dict[str, object]) -> tuple[float, float]:
                out.unlink(missing_ok=True)
                spawned = time.clock_gettime(time.CLOCK_MONOTONIC)
                run(COLD_CREDVEND, env=base_env | {"BENCH_OUT": str(out), "BENCH_BODY": json.dumps(body)})
                child = json.loads(out.read_text().splitlines()[-1])
                return child["done"] - spawned, child["cpu"]

            cases = {
                "assume_role": {"role": ASSUME_ROLE},
                "web_identity": {"role": WEB_IDENTITY},
                "web_identity_43200": {"role": WEB_IDENTITY, "duration_seconds": 43200},
            }
            for body in cases.values():
                cold(body)  # page cache
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
            for _ in range(args.runs):
                for name, body in cases.items():
                    samples[name].append(cold(body))
            out.unlink(missing_ok=True)
            run(WARM_BOTH, env=base_env | {"BENCH_OUT": str(out), "BENCH_BODY": "{}", "BENCH_WARM_N": str(args.warm)})
            warm = json.loads(out.read_text().splitlines()[-1])
    finally:
        server.stop()  # type: ignore[attr-defined]

    cold_ms = {name: round(statistics.median(s[0] for s in runs) * 1000, 1) for name, runs in samples.items()}
    cold_cpu_ms = {name: round(statistics.median(s[1] for s in runs) * 1000, 1) for name, runs in samples.items()}
    warm_ms = {name: round(value * 1000, 3) for name, value in warm["wall"].items()}
    warm_cpu_ms = {name: round(value * 1000, 3) for name, value in warm["cpu"].items()}
    warm_ratio = warm["wall"]["web_identity"] / warm["wall"]["assume_role"]
    figures: dict[str, Any] = {
        "aws": f"moto {__import__('moto').__version__} server mode (STS + KMS) on {endpoint}",
        "cold_start_ms": cold_ms,
        "cold_cpu_ms": cold_cpu_ms,
        "cold_ratio_web_identity_vs_assume_role": round(cold_ms["web_identity"] / cold_ms["assume_role"], 3),
        "warm_ms": warm_ms,
        "warm_cpu_ms": warm_cpu_ms,
        "warm_ratio_web_identity_vs_assume_role": round(warm_ratio, 3),
    }
    print(f"credvend issuance bench; local AWS: {figures['aws']}")
    print(f"  cold start, fresh process, import + first vend (median of {args.runs}, interleaved):")
    print(f"    {'':<40}{'to response ms':>16}{'CPU ms':>10}")
    for name in cases:
        print(f"    {name:<40}{cold_ms[name]:>16}{cold_cpu_ms[name]:>10}")
    print(f"    web_identity / assume_role: {figures['cold_ratio_web_identity_vs_assume_role']:.2f}x")
    print(f"  warm, per vend in one process (median of {args.warm}, interleaved call by call):")
    verdict = "met" if warm_ratio <= WARM_TARGET else "MISSED"
    print(
        f"    web_identity {warm_ms['web_identity']} ms vs assume_role {warm_ms['assume_role']} ms -> "
        f"{warm_ratio:.3f}x [target <= {WARM_TARGET}x] {verdict}"
    )
    print(
        f"    CPU in the function per vend: web_identity {warm_cpu_ms['web_identity']} ms, "
        f"assume_role {warm_cpu_ms['assume_role']} ms"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
