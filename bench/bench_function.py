"""``make bench``: credvend's vending function against a hand-written minimal Lambda.

Both run against the same local STS over HTTP: moto's server mode
(``moto.server.ThreadedMotoServer``) on 127.0.0.1. Figures:

* cold start: a fresh ``python3.13 -S`` process doing import + first vend (median of
  several runs, the two functions interleaved). credvend runs FROM THE BUILT ASSET
  (``infra.bundling``) with only a boto3 on the path, as on Lambda; bytecode writing is off
  because ``/var/task`` is read-only. Target: <= 1.3x the hand-written one.
* warm: per-vend time through ``credvend.handler.handler`` vs a bare ``assume_role`` call
  (and the hand-written handler), interleaved call by call in one process. Target <= 1.15x.
* deployment package: the asset, zipped.

``python bench/bench_function.py [--runs N] [--warm N] [--json PATH]``; exits non-zero
only if something fails to run, not when a target is missed (it says so).
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
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from _drivers import COLD_CREDVEND, COLD_HANDWRITTEN, WARM  # noqa: E402

from infra.bundling import build_function_bundle, zipped_size  # noqa: E402

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ReportsReader"
BOTO3_PACKAGES = ("boto3", "botocore", "jmespath", "dateutil", "six.py", "s3transfer", "urllib3")
COLD_TARGET, WARM_TARGET = 1.3, 1.15


def boto3_only_path(cache: Path) -> Path:
    """A directory holding boto3 and its dependencies only (what the Lambda runtime adds)."""
    import boto3

    site = Path(boto3.__file__).resolve().parents[1]
    farm = cache / "boto3-only"
    farm.mkdir(parents=True, exist_ok=True)
    for name in BOTO3_PACKAGES:
        link = farm / name
        if not link.exists():
            link.symlink_to(site / name)
    return farm


def start_sts() -> tuple[object, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def run(code: str, *, env: dict[str, str], out: Path) -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-S", "-c", code],
        env=env,
        stdout=subprocess.DEVNULL,  # the function's logs and EMF metrics; Lambda ships them off-box
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench driver failed:\n{result.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="cold starts per function")
    parser.add_argument("--warm", type=int, default=300, help="warm calls per case")
    parser.add_argument("--arch", default="x86_64" if os.uname().machine in ("x86_64", "AMD64") else "arm64")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    cache = REPO_ROOT / ".cache" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    bundle = build_function_bundle(policy_file=REPO_ROOT / "policy.yaml", architecture=args.arch)
    build_seconds = time.perf_counter() - started
    package_bytes = zipped_size(bundle)
    boto3_dir = boto3_only_path(cache)
    server, endpoint = start_sts()
    try:
        base_env = {
            "PATH": "/usr/bin:/bin",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "AKIABENCHEXAMPLE0000",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": "credvend",
            "PYTHONDONTWRITEBYTECODE": "1",  # /var/task is read-only
            "BENCH_DIR": str(REPO_ROOT / "bench"),
            "ROLE_ARN": ROLE_ARN,
            "PYTHONPATH": f"{bundle}{os.pathsep}{boto3_dir}",
        }
        figures: dict[str, object] = {
            "sts": f"moto {__import__('moto').__version__} server mode on {endpoint}",
            "bundle": str(bundle.relative_to(REPO_ROOT)),
            "bundle_build_seconds": round(build_seconds, 2),
            "package_zipped_bytes": package_bytes,
        }
        with tempfile.TemporaryDirectory(prefix="credvend-bench-") as scratch:
            out = Path(scratch) / "out.txt"

            def cold(code: str, body: dict[str, object]) -> float:
                out.unlink(missing_ok=True)
                env = base_env | {"BENCH_OUT": str(out), "BENCH_BODY": json.dumps(body)}
                wall = time.perf_counter()
                run(code, env=env, out=out)
                return time.perf_counter() - wall

            default_body = {"role": "reports-reader"}
            long_body = {"role": "reports-reader", "duration_seconds": 43200}
            cold_ours: list[float] = []
            cold_hand: list[float] = []
            cold_ours_long: list[float] = []
            cold(COLD_CREDVEND, default_body)  # warm the page cache once for both
            cold(COLD_HANDWRITTEN, default_body)
            for _ in range(args.runs):
                cold_hand.append(cold(COLD_HANDWRITTEN, default_body))
                cold_ours.append(cold(COLD_CREDVEND, default_body))
                cold_ours_long.append(cold(COLD_CREDVEND, long_body))
            out.unlink(missing_ok=True)
            env = base_env | {
                "BENCH_OUT": str(out),
                "BENCH_BODY": json.dumps(default_body),
                "BENCH_WARM_N": str(args.warm),
            }
            run(WARM, env=env, out=out)
            warm = json.loads(out.read_text().splitlines()[-1])

        hand, ours, ours_long = (statistics.median(v) for v in (cold_hand, cold_ours, cold_ours_long))
        figures |= {
            "cold_start_ms": {
                "handwritten": round(hand * 1000, 1),
                "credvend": round(ours * 1000, 1),
                "credvend_43200_requested": round(ours_long * 1000, 1),
            },
            "cold_start_ratio": round(ours / hand, 3),
            "cold_start_ratio_43200_requested": round(ours_long / hand, 3),
            "warm_ms": {name: round(value * 1000, 3) for name, value in warm.items()},
            "warm_ratio_vs_bare_assume_role": round(warm["credvend"] / warm["bare_assume_role"], 3),
            "warm_ratio_vs_handwritten": round(warm["credvend"] / warm["handwritten"], 3),
            "warm_ratio_vs_same_request": round(warm["credvend"] / warm["bare_assume_role_same_request"], 3),
            "warm_overhead_ms": round((warm["credvend"] - warm["bare_assume_role"]) * 1000, 3),
        }
    finally:
        server.stop()  # type: ignore[attr-defined]

    cold_ratio = figures["cold_start_ratio"]
    warm_ratio = figures["warm_ratio_vs_bare_assume_role"]
    print(f"local STS: {figures['sts']}")
    print(
        f"deployment package (zipped, boto3 not bundled): {package_bytes / 1024 / 1024:.2f} MiB  [{figures['bundle']}]"
    )
    c = figures["cold_start_ms"]
    assert isinstance(c, dict)
    print(
        f"cold start, import + first vend (median of {args.runs}): credvend {c['credvend']} ms, "
        f"hand-written {c['handwritten']} ms -> {cold_ratio}x (target <= {COLD_TARGET}x)"
        f"{'' if float(cold_ratio) <= COLD_TARGET else '  MISSED'}"  # type: ignore[arg-type]
    )
    print(
        f"  with 43200 s requested (adds the one GetCallerIdentity per container): {c['credvend_43200_requested']} ms "
        f"-> {figures['cold_start_ratio_43200_requested']}x"
    )
    w = figures["warm_ms"]
    assert isinstance(w, dict)
    print(
        f"warm per vend (median of {args.warm}): credvend {w['credvend']} ms, "
        f"bare assume_role {w['bare_assume_role']} ms"
        f" -> {warm_ratio}x (target <= {WARM_TARGET}x){'' if float(warm_ratio) <= WARM_TARGET else '  MISSED'}; "  # type: ignore[arg-type]
        f"hand-written handler {w['handwritten']} ms; credvend adds {figures['warm_overhead_ms']} ms"
    )
    print(
        f"  vs a bare assume_role sending the same SourceIdentity and session tags "
        f"({w['bare_assume_role_same_request']} ms): {figures['warm_ratio_vs_same_request']}x"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
