"""``make bench``: what the size of the policy file costs, for 20, 200 and 1,000 callers.

For each generated policy (``credvend_local.policy_gen``):

* synth: the app (``app.py``, as ``cdk synth`` runs it: real function bundle, cdk-nag and
  the quota checks) in a fresh process, the bundle already built; wall seconds. The CDK
  CLI's own start-up (a few seconds of Node) is not included.
* sizes: every quota-bound document of the template as IAM counts it (the same
  measures the synth checks, ``infra/quota_checks.py``): the API's resource policy, the
  largest trust policy, the execution role's inline policies, its largest managed policy,
  outputs, resources and the template's bytes.
* cold start: a fresh ``python3.13 -S`` running the function from its built asset, as on
  Lambda (only the asset and a boto3 on the path), import + policy load + first vend
  against a local STS (moto server mode); median of ``--runs``, the policies interleaved
  run by run so machine noise hits all alike. Target: 1,000 callers within 1.3x of 20.

``python bench/bench_scale.py [--runs N] [--sizes 20:10,200:40,1000:200] [--json PATH]``;
exits non-zero only if something fails to run, not when a target is missed (it says so).
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
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# jsii prints a banner for every Node it considers end-of-life; it says nothing about our code.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "lambda_src"), str(REPO_ROOT / "bench")]

from _drivers import EVENT_SETUP  # noqa: E402
from bench_function import boto3_only_path, start_sts  # noqa: E402

from credvend_local.policy_gen import caller_name, generate_policy, role_alias  # noqa: E402
from credvend_policy.quotas import Limits, QuotaFinding  # noqa: E402
from infra.bundling import build_function_bundle  # noqa: E402
from infra.quota_checks import check_template_file  # noqa: E402

COLD_TARGET = 1.3
CACHE = REPO_ROOT / ".cache" / "bench" / "scale"

# The first caller (svc-0000, granted role-000) vends, whatever the policy's size.
COLD_DRIVER = (
    EVENT_SETUP.replace('"arn:aws:sts::123456789012:assumed-role/billing-api-task/i-1"', 'os.environ["BENCH_USER"]')
    + r"""
from credvend.handler import handler
result = handler(event(BODY), Ctx())
report()
assert result["statusCode"] == 200, result
"""
)


def _sizes(text: str) -> list[tuple[int, int]]:
    pairs = []
    for item in text.split(","):
        callers, _, roles = item.partition(":")
        pairs.append((int(callers), int(roles)))
    return pairs


def synth(policy_file: Path, outdir: Path, arch: str) -> float:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CDK_", "AWS_"))} | {
        "CDK_CONTEXT_JSON": json.dumps({**context, "policy": str(policy_file), "architecture": arch}),
        "CDK_OUTDIR": str(outdir),
        "CDK_DEFAULT_ACCOUNT": "111122223333",
        "CDK_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,20",
    }
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"synth of {policy_file} failed:\n{result.stderr[-3000:]}")
    return seconds


def summarize(findings: list[QuotaFinding]) -> dict[str, Any]:
    def largest(prefix: str) -> tuple[int, int]:
        sizes = [(f.size, f.quota.limit) for f in findings if f.document.startswith(prefix)]
        return max(sizes) if sizes else (0, 0)

    return {
        "api_resource_policy": largest("resource policy of REST API"),
        "largest_trust_policy": largest("trust policy of role"),
        "execution_role_inline": largest("inline policies of role"),
        "largest_managed_policy": largest("managed policy "),
        "outputs": largest("stack outputs"),
        "resources": largest("stack resources"),
        "template_bytes": largest("stack template"),
        "over_quota": [str(f) for f in findings if f.exceeded],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=_sizes("20:10,200:40,1000:200"), help="callers:roles,...")
    parser.add_argument("--runs", type=int, default=9, help="cold starts per policy")
    parser.add_argument("--arch", default="x86_64" if os.uname().machine in ("x86_64", "AMD64") else "arm64")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    CACHE.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}
    bundles: dict[str, Path] = {}
    for callers, roles in args.sizes:
        name = f"{callers}/{roles}"
        policy_file = CACHE / f"policy-{callers}-{roles}.json"
        policy_file.write_text(json.dumps(generate_policy(callers=callers, roles=roles), indent=1) + "\n")
        bundles[name] = build_function_bundle(policy_file=policy_file, architecture=args.arch)
        outdir = CACHE / f"cdk.out-{callers}-{roles}"
        seconds = synth(policy_file, outdir, args.arch)
        findings = check_template_file(outdir / "Credvend.template.json", Limits())
        rows[name] = {"callers": callers, "roles": roles, "synth_seconds": round(seconds, 1), **summarize(findings)}
        print(f"  synthesized {name} in {seconds:.1f} s", file=sys.stderr)

    boto3_dir = boto3_only_path(REPO_ROOT / ".cache" / "bench")
    server, endpoint = start_sts()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in bundles}
    try:
        with tempfile.TemporaryDirectory(prefix="credvend-scale-") as scratch:
            out = Path(scratch) / "out.txt"

            def cold(bundle: Path) -> tuple[float, float]:
                out.unlink(missing_ok=True)
                env = {
                    "PATH": "/usr/bin:/bin",
                    "AWS_REGION": "us-east-1",
                    "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_ACCESS_KEY_ID": "AKIABENCHEXAMPLE0000",
                    "AWS_SECRET_ACCESS_KEY": "bench-secret",
                    "AWS_ENDPOINT_URL": endpoint,
                    "AWS_LAMBDA_FUNCTION_NAME": "credvend",
                    "CREDVEND_POLICY_FILE": str(bundle / "policy.json"),  # as the stack sets it
                    "PYTHONDONTWRITEBYTECODE": "1",  # /var/task is read-only
                    "PYTHONPATH": f"{bundle}{os.pathsep}{boto3_dir}",
                    "BENCH_OUT": str(out),
                    "BENCH_BODY": json.dumps({"role": role_alias(0)}),
                    "BENCH_USER": f"arn:aws:sts::000000000000:assumed-role/{caller_name(0)}-task/i-1",
                }
                spawned = time.clock_gettime(time.CLOCK_MONOTONIC)
                result = subprocess.run(  # noqa: S603 - our own interpreter and code
                    [sys.executable, "-S", "-c", COLD_DRIVER],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    check=False,
                    timeout=120,
                )
                if result.returncode != 0:
                    raise SystemExit(f"cold start failed:\n{result.stderr[-3000:]}")
                child = json.loads(out.read_text().splitlines()[-1])
                return child["done"] - spawned, child["cpu"]

            for bundle in bundles.values():  # warm the page cache once for each
                cold(bundle)
            for _ in range(args.runs):
                for name, bundle in bundles.items():
                    samples[name].append(cold(bundle))
    finally:
        server.stop()  # type: ignore[attr-defined]

    baseline = next(iter(samples))
    base_wall = statistics.median(s[0] for s in samples[baseline])
    base_cpu = statistics.median(s[1] for s in samples[baseline])
    for name, runs in samples.items():
        wall = statistics.median(s[0] for s in runs)
        cpu = statistics.median(s[1] for s in runs)
        rows[name] |= {
            "cold_start_ms": round(wall * 1000, 1),
            "cold_start_ratio": round(wall / base_wall, 3),
            "cold_cpu_ms": round(cpu * 1000, 1),
            "cold_cpu_ratio": round(cpu / base_cpu, 3),
        }

    print(f"credvend scale bench (arch {args.arch}; cold start: median of {args.runs}, interleaved)")
    header = (
        "| callers / roles | synth | template | API resource policy (8,192) | largest trust policy (2,048) "
        "| execution role inline (10,240) | largest managed policy (6,144) | outputs (200) | resources (500) "
        f"| cold start (vs {baseline}) | cold CPU |"
    )
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for name, row in rows.items():
        print(
            f"| {name} | {row['synth_seconds']} s | {row['template_bytes'][0] / 1024:.0f} KiB "
            f"| {row['api_resource_policy'][0]:,} | {row['largest_trust_policy'][0]:,} "
            f"| {row['execution_role_inline'][0]:,} | {row['largest_managed_policy'][0]:,} "
            f"| {row['outputs'][0]} | {row['resources'][0]} "
            f"| {row['cold_start_ms']} ms ({row['cold_start_ratio']:.2f}x) "
            f"| {row['cold_cpu_ms']} ms ({row['cold_cpu_ratio']:.2f}x) |"
        )
    last = rows[list(rows)[-1]]
    verdict = "met" if last["cold_start_ratio"] <= COLD_TARGET else "MISSED"
    print(
        f"cold start, {list(rows)[-1]} vs {baseline}: {last['cold_start_ratio']:.2f}x "
        f"[target <= {COLD_TARGET}x] {verdict}"
    )
    over = [line for row in rows.values() for line in row["over_quota"]]
    print("every document within its quota" if not over else "OVER QUOTA:\n  " + "\n  ".join(over))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
