"""``make bench``: what OIDC callers (CONTRACT §10) cost, and that the IAM path does not pay.

Both against the same local STS over HTTP (moto's server mode), the function running from
the built asset with only a boto3 on the path, as in bench/bench_function.py. Figures:

* warm, one process, interleaved call by call: an OIDC vend (``POST /oidc/credentials``
  with a GitHub-shaped RS256 token from a local issuer; JWKS cached after the first call)
  against an IAM vend (``POST /credentials``, SigV4 identity) of the same role.
  Target: OIDC <= 1.2x IAM.
* cold start of the IAM path, before and after OIDC callers were added: a fresh
  ``python -S`` process doing import + first IAM vend, from an asset built from the tree
  without ``credvend/oidc`` (``main`` before the merge, the merged-into main after it;
  ``--before REF`` to choose) and from this tree, interleaved. Target: after <= 1.05x
  before. Also printed: the same with a policy that declares issuers and OIDC callers (the
  IAM path then validates them at cold start too).

``python bench/bench_oidc.py [--runs N] [--warm N] [--before REF]``; exits non-zero only if
something fails to run, not when a target is missed (it says so).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))
sys.path.insert(0, str(REPO_ROOT / "lambda_src"))

from _drivers import COLD_CREDVEND, EVENT_SETUP  # noqa: E402
from bench_function import ROLE_ARN, boto3_only_path, run, start_sts  # noqa: E402

from credvend_local.oidc_issuer import LocalOidcIssuer  # noqa: E402
from infra.bundling import build_function_bundle  # noqa: E402

WARM_TARGET, COLD_TARGET = 1.2, 1.05
OIDC_MARKER = "lambda_src/credvend/oidc/__init__.py"

WARM_OIDC = (
    EVENT_SETUP
    + r"""
import copy, statistics
from credvend.handler import handler
iam_event, ctx = event(BODY), Ctx()
oidc_event = copy.deepcopy(iam_event)
oidc_event["resource"] = oidc_event["path"] = "/oidc/credentials"
oidc_event["requestContext"]["identity"] = {"userArn": None}
oidc_event["headers"]["Authorization"] = "Bearer " + os.environ["BENCH_TOKEN"]
def iam():
    assert handler(iam_event, ctx)["statusCode"] == 200
def oidc():
    result = handler(oidc_event, ctx)
    assert result["statusCode"] == 200, result["body"]
cases = {"iam": iam, "oidc": oidc}
for f in cases.values():
    for _ in range(20): f()
samples = {name: [] for name in cases}
cpu_samples = {name: [] for name in cases}
clock, cpu_clock = time.perf_counter, time.thread_time
for _ in range(int(os.environ["BENCH_WARM_N"])):
    for name, f in cases.items():
        c, t = cpu_clock(), clock(); f(); samples[name].append(clock() - t); cpu_samples[name].append(cpu_clock() - c)
medians = {name: statistics.median(v) for name, v in samples.items()}
cpu_medians = {name: statistics.median(v) for name, v in cpu_samples.items()}
open(os.environ["BENCH_OUT"], "a").write(json.dumps({"wall": medians, "cpu": cpu_medians}) + "\n")
"""
)


def base_environment(endpoint: str, bundle: Path, boto3_dir: Path) -> dict[str, str]:
    """As bench/bench_function.py runs the function: the asset and a boto3, nothing else."""
    return {
        "PATH": "/usr/bin:/bin",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIABENCHEXAMPLE0000",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": "credvend",
        "PYTHONDONTWRITEBYTECODE": "1",
        "BENCH_DIR": str(REPO_ROOT / "bench"),
        "ROLE_ARN": ROLE_ARN,
        "PYTHONPATH": f"{bundle}{os.pathsep}{boto3_dir}",
    }


def oidc_policy(issuer_url: str) -> dict[str, Any]:
    """The repository's policy.yaml plus an issuer and an OIDC caller of reports-reader."""
    import yaml

    document: dict[str, Any] = yaml.safe_load((REPO_ROOT / "policy.yaml").read_text())
    document["issuers"] = {"github": {"url": issuer_url, "audiences": ["credvend"]}}
    document["callers"]["deploy-prod"] = {
        "oidc": [{"issuer": "github", "claims": {"sub": "repo:acme/app:environment:prod", "repository_owner": "acme"}}],
        "grants": [{"role": "reports-reader", "max_duration_seconds": 3600}],
    }
    return document


def _git(*args: str) -> str:
    return subprocess.run(  # noqa: S603 - fixed argv
        ["git", *args],  # noqa: S607 - git from PATH, as make runs it
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _has_oidc(ref: str) -> bool:
    return (
        subprocess.run(  # noqa: S603
            ["git", "cat-file", "-e", f"{ref}:{OIDC_MARKER}"],  # noqa: S607
            cwd=REPO_ROOT,
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def before_ref(explicit: str | None) -> str:
    """The tree without OIDC callers to compare with: ``main`` while this branch is not merged
    into it, else the last commit without ``credvend/oidc`` on HEAD's first-parent line (on
    main after the merge: the main it was merged into)."""
    if explicit:
        return _git("rev-parse", "--verify", explicit)
    main = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "main"],  # noqa: S607
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if main and not _has_oidc(main):
        return main
    for commit in _git("rev-list", "--first-parent", "HEAD").split():
        if not _has_oidc(commit):
            return commit
    raise SystemExit(f"no commit without {OIDC_MARKER} on HEAD's first-parent line; pass --before REF")


def build_before_bundle(ref: str, scratch: Path, arch: str) -> Path:
    """The asset as the commit ``ref`` builds it (its own bundler, sources and requirements)."""
    tree = scratch / "before-tree"
    tree.mkdir()
    archive = subprocess.run(  # noqa: S603
        ["git", "archive", ref, "infra", "lambda_src", "policy.yaml"],  # noqa: S607
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)  # noqa: S603, S607
    (tree / ".cache").mkdir()
    (tree / ".cache" / "wheels").symlink_to(REPO_ROOT / ".cache" / "wheels")  # offline, the same wheels
    out = scratch / "before-bundle"
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "infra.bundling", "--arch", arch, "--policy", "policy.yaml", "--out", str(out)],
        cwd=tree,
        capture_output=True,
        check=True,
    )
    shutil.rmtree(tree)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="cold starts per asset")
    parser.add_argument("--warm", type=int, default=300, help="warm calls per case")
    parser.add_argument("--before", default=None, help="git ref of the 'before' asset (default: see above)")
    parser.add_argument("--arch", default="x86_64" if os.uname().machine in ("x86_64", "AMD64") else "arm64")
    args = parser.parse_args(argv)

    cache = REPO_ROOT / ".cache" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    after = build_function_bundle(policy_file=REPO_ROOT / "policy.yaml", architecture=args.arch)
    boto3_dir = boto3_only_path(cache)
    ref = before_ref(args.before)
    server, endpoint = start_sts()
    issuer = LocalOidcIssuer()
    try:
        with tempfile.TemporaryDirectory(prefix="credvend-bench-oidc-") as scratch_dir:
            scratch = Path(scratch_dir)
            before = build_before_bundle(ref, scratch, args.arch)
            policy_with_oidc = scratch / "policy-oidc.json"
            policy_with_oidc.write_text(json.dumps(oidc_policy(issuer.url)))
            out = scratch / "out.txt"

            def env_for(bundle: Path, policy: Path, **extra: str) -> dict[str, str]:
                env = base_environment(endpoint, bundle, boto3_dir)
                return env | {"CREDVEND_POLICY_FILE": str(policy), "BENCH_OUT": str(out), **extra}

            # -- warm: OIDC vs IAM, one process ---------------------------------------------
            token = issuer.github_token(repository="acme/app", environment="prod")
            body = json.dumps({"role": "reports-reader"})
            out.unlink(missing_ok=True)
            run(
                WARM_OIDC,
                env=env_for(after, policy_with_oidc, BENCH_BODY=body, BENCH_TOKEN=token, BENCH_WARM_N=str(args.warm)),
            )
            warm = json.loads(out.read_text().splitlines()[-1])
            jwks_fetches = issuer.jwks_requests

            # -- cold: the IAM path before and after ----------------------------------------
            def cold(bundle: Path, policy: Path) -> float:
                out.unlink(missing_ok=True)
                spawned = time.clock_gettime(time.CLOCK_MONOTONIC)
                run(COLD_CREDVEND, env=env_for(bundle, policy, BENCH_BODY=body))
                return float(json.loads(out.read_text().splitlines()[-1])["done"]) - spawned

            plain = {"before": before / "policy.json", "after": after / "policy.json"}
            samples: dict[str, list[float]] = {"before": [], "after": [], "after_with_oidc_policy": []}
            cold(before, plain["before"])  # page cache
            cold(after, plain["after"])
            for _ in range(args.runs):
                samples["before"].append(cold(before, plain["before"]))
                samples["after"].append(cold(after, plain["after"]))
                samples["after_with_oidc_policy"].append(cold(after, policy_with_oidc))
    finally:
        issuer.stop()
        server.stop()  # type: ignore[attr-defined]

    wall, cpu = warm["wall"], warm["cpu"]
    warm_ratio = wall["oidc"] / wall["iam"]
    med = {name: statistics.median(values) for name, values in samples.items()}
    cold_ratio = med["after"] / med["before"]
    print(f"credvend OIDC bench; local STS: moto server mode on {endpoint}; issuer {issuer.url}")
    print(f"  warm, per vend in one process (median of {args.warm}, interleaved call by call, JWKS cached):")
    print(
        f"    OIDC {wall['oidc'] * 1000:.3f} ms vs IAM {wall['iam'] * 1000:.3f} ms -> {warm_ratio:.3f}x "
        f"[target <= {WARM_TARGET}x] {'met' if warm_ratio <= WARM_TARGET else 'MISSED'}"
    )
    print(
        f"    CPU per vend: OIDC {cpu['oidc'] * 1000:.3f} ms, IAM {cpu['iam'] * 1000:.3f} ms "
        f"(token verification adds {(cpu['oidc'] - cpu['iam']) * 1000:.3f} ms); JWKS fetched {jwks_fetches} time(s)"
    )
    print(f"  IAM path cold start, import + first vend (median of {args.runs}, interleaved):")
    print(f"    before ({ref[:10]}, no OIDC callers)         {med['before'] * 1000:8.1f} ms")
    print(
        f"    after  (this tree)                          {med['after'] * 1000:8.1f} ms -> {cold_ratio:.3f}x "
        f"[target <= {COLD_TARGET}x] {'met' if cold_ratio <= COLD_TARGET else 'MISSED'}"
    )
    print(
        f"    after, policy with issuers + OIDC callers    {med['after_with_oidc_policy'] * 1000:8.1f} ms -> "
        f"{med['after_with_oidc_policy'] / med['before']:.3f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
