"""Gateway figures (issue 4): credvend deployed on LocalStack vs a bare AssumeRole Lambda.

Starts its own LocalStack with the project's launcher (instance ``bench-gateway``), deploys
the real stack with the project's CDK CLI (``credvend_local/deploy.py``, policy
``tests/e2e/policy.e2e.yaml``), creates an IAM user caller (``credvend-e2e-user``, granted
``reports-reader``), and next to the stack a bare Lambda (``bench/handwritten_handler.py``:
one ``boto3.client("sts").assume_role``, an API Gateway proxy response) behind the same kind
of API: a REST API, ``POST /credentials`` with ``AWS_IAM`` authorization, a Lambda proxy
integration, a deployed stage. Both functions run on the same executor with the same
memory size; both are called by the same user over HTTP with SigV4 (``tests/e2e/sigv4.py``).

Figures: LocalStack start, deploy (``cdk bootstrap`` + ``cdk deploy``), and for each API
* cold: the first call after the function was created, then after each update of its
  environment (which makes Lambda, and LocalStack, start a new execution environment);
  the median of those calls, the two APIs interleaved;
* warm: the median of ``--warm`` sequential calls, the two APIs interleaved call by call.
Goal (issue 4): credvend's warm vend within 1.2x the bare Lambda's.

``python bench/bench_gateway.py [--cold N] [--warm N] [--json PATH]``. LocalStack is stopped
at the end whatever happens (and dies with this process if it is killed). Exits non-zero
only if something fails to run, not when the goal is missed (it says so).
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import statistics
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from botocore.credentials import Credentials  # noqa: E402

from credvend_local import launcher  # noqa: E402
from credvend_local.deploy import REGION, deploy  # noqa: E402
from credvend_local.identities import ACCOUNT, admin_client, create_user  # noqa: E402
from credvend_local.sigv4 import signed_request  # noqa: E402
from credvend_local.support import add_proxy_method  # noqa: E402

INSTANCE = "bench-gateway"  # not "dev"/"dev6"/"bench": those belong to others
POLICY_FILE = REPO_ROOT / "tests" / "e2e" / "policy.e2e.yaml"
CALLER_USER = "credvend-e2e-user"  # caller e2e-user in the policy, granted reports-reader
BODY = {"role": "reports-reader"}
HANDWRITTEN = REPO_ROOT / "bench" / "handwritten_handler.py"
WARM_GOAL = 1.2
_LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def _timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def _wait_updated(lam: Any, name: str) -> None:
    for _ in range(240):
        config = lam.get_function_configuration(FunctionName=name)
        if config["State"] == "Active" and config.get("LastUpdateStatus", "Successful") == "Successful":
            return
        if config["State"] == "Failed" or config.get("LastUpdateStatus") == "Failed":
            reason = config.get("StateReason") or config.get("LastUpdateStatusReason")
            raise RuntimeError(f"function {name} failed: {reason}")
        time.sleep(0.25)
    raise RuntimeError(f"function {name} did not become ready")


class BareApi:
    """The baseline: hand-written AssumeRole Lambda behind an AWS_IAM REST API with proxy integration."""

    def __init__(self, endpoint: str, *, memory_mb: int, timeout_s: int) -> None:
        suffix = uuid.uuid4().hex[:8]
        iam = admin_client("iam", endpoint)
        self.lam = admin_client("lambda", endpoint)
        apigw = admin_client("apigateway", endpoint)
        execution_role = iam.create_role(
            RoleName=f"bench-bare-fn-{suffix}", AssumeRolePolicyDocument=json.dumps(_LAMBDA_TRUST)
        )["Role"]
        target = iam.create_role(
            RoleName=f"bench-bare-target-{suffix}",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"AWS": execution_role["Arn"]}, "Action": "sts:AssumeRole"}
                    ],
                }
            ),
        )["Role"]
        iam.put_role_policy(
            RoleName=execution_role["RoleName"],
            PolicyName="AssumeTarget",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target["Arn"]}],
                }
            ),
        )
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            zipped.write(HANDWRITTEN, "handwritten_handler.py")
        self.name = f"bench-bare-{suffix}"
        function_arn = self.lam.create_function(
            FunctionName=self.name,
            Runtime="python3.13",
            Role=execution_role["Arn"],
            Handler="handwritten_handler.handler",
            Code={"ZipFile": archive.getvalue()},
            MemorySize=memory_mb,
            Timeout=timeout_s,
            Environment={"Variables": {"ROLE_ARN": target["Arn"]}},
        )["FunctionArn"]
        _wait_updated(self.lam, self.name)
        api_id = apigw.create_rest_api(name=f"bench-bare-{suffix}")["id"]
        root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
        add_proxy_method(
            apigw,
            api_id=api_id,
            parent_id=root,
            path="credentials",
            http_method="POST",
            function_arn=function_arn,
            region=REGION,
        )
        self.lam.add_permission(
            FunctionName=self.name,
            StatementId="apigateway",
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/POST/credentials",
        )
        apigw.create_deployment(restApiId=api_id, stageName="prod")
        self.url = f"{endpoint}/_aws/execute-api/{api_id}/prod/credentials"


def new_environment(lam: Any, name: str, generation: int) -> None:
    """Change the function's environment: Lambda (and LocalStack) start a new execution environment."""
    variables = lam.get_function_configuration(FunctionName=name).get("Environment", {}).get("Variables", {})
    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": variables | {"BENCH_GENERATION": str(generation)}}
    )
    _wait_updated(lam, name)


def vend(url: str, caller: Credentials) -> float:
    response, seconds = _timed(lambda: signed_request("POST", url, caller, body=BODY))
    if response.status_code != 200 or "SessionToken" not in response.text:
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:500]}")
    return float(seconds)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", type=int, default=3, help="cold calls per API (new environment each)")
    parser.add_argument("--warm", type=int, default=50, help="warm calls per API")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    # SIGTERM (a CI timeout, a kill) must still run the finally below; SIGKILL is covered by
    # tie_to_parent (LocalStack gets SIGTERM when this process dies).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    launcher.install()
    launcher.stop(INSTANCE)  # a leftover of a killed run: measure a real start
    figures: dict[str, Any] = {}
    ls, start_seconds = _timed(lambda: launcher.start(name=INSTANCE, tie_to_parent=True, stop_at_exit=True))
    try:
        figures["localstack_start_s"] = round(start_seconds, 1)
        print(f"LocalStack start: {start_seconds:.1f} s", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="credvend-bench-gateway-") as workdir:
            deployment = deploy(ls.endpoint, policy_file=POLICY_FILE, workdir=Path(workdir), echo=True)
        figures["deploy_s"] = round(deployment.seconds, 1)
        print(f"deploy (cdk bootstrap + deploy): {deployment.seconds:.1f} s", file=sys.stderr)
        caller = create_user(ls.endpoint, CALLER_USER)
        ours_url = f"{deployment.api_url}/credentials"
        ours_name = deployment.outputs["FunctionName"]
        lam = admin_client("lambda", ls.endpoint)
        memory = lam.get_function_configuration(FunctionName=ours_name)
        bare = BareApi(ls.endpoint, memory_mb=memory["MemorySize"], timeout_s=memory["Timeout"])
        print("both APIs ready; measuring", file=sys.stderr)

        cold: dict[str, list[float]] = {"credvend": [], "bare": []}
        for generation in range(args.cold):
            if generation:  # the first round is the first call after creation
                new_environment(lam, ours_name, generation)
                new_environment(lam, bare.name, generation)
            order = [("credvend", ours_url), ("bare", bare.url)]
            for name, url in order if generation % 2 == 0 else reversed(order):
                cold[name].append(vend(url, caller))
        warm: dict[str, list[float]] = {"credvend": [], "bare": []}
        for _ in range(3):  # settle connections and caches
            vend(ours_url, caller), vend(bare.url, caller)
        for _ in range(args.warm):
            warm["credvend"].append(vend(ours_url, caller))
            warm["bare"].append(vend(bare.url, caller))
    finally:
        ls.stop()
        launcher.remove_instance(INSTANCE)

    cold_med = {name: statistics.median(values) for name, values in cold.items()}
    warm_med = {name: statistics.median(values) for name, values in warm.items()}
    cold_ratio = cold_med["credvend"] / cold_med["bare"]
    warm_ratio = warm_med["credvend"] / warm_med["bare"]
    figures |= {
        "cold_ms": {name: [round(v * 1000, 1) for v in values] for name, values in cold.items()},
        "cold_median_ms": {name: round(v * 1000, 1) for name, v in cold_med.items()},
        "warm_median_ms": {name: round(v * 1000, 2) for name, v in warm_med.items()},
        "warm_p90_ms": {name: round(statistics.quantiles(v, n=10)[-1] * 1000, 2) for name, v in warm.items()},
        "cold_ratio": round(cold_ratio, 3),
        "warm_ratio": round(warm_ratio, 3),
    }
    verdict = "met" if warm_ratio <= WARM_GOAL else "MISSED"
    rows = [
        ("", "credvend", "bare Lambda", "ratio"),
        (
            f"cold vend (median of {args.cold})",
            _ms(cold_med["credvend"]),
            _ms(cold_med["bare"]),
            f"{cold_ratio:.2f}x",
        ),
        (
            f"warm vend (median of {args.warm})",
            _ms(warm_med["credvend"]),
            _ms(warm_med["bare"]),
            f"{warm_ratio:.2f}x  (goal <= {WARM_GOAL}x: {verdict})",
        ),
    ]
    print("credvend through API Gateway (AWS_IAM, SigV4) on LocalStack, vs a bare AssumeRole Lambda")
    print(
        f"  LocalStack start: {figures['localstack_start_s']} s;"
        f" deploy (cdk bootstrap + deploy): {figures['deploy_s']} s"
    )
    for label, ours, theirs, ratio in rows:
        print(f"  {label:<28}{ours:>12}{theirs:>14}   {ratio}")
    print(f"  cold samples (ms): credvend {figures['cold_ms']['credvend']}, bare {figures['cold_ms']['bare']}")
    print(f"  warm p90 (ms): credvend {figures['warm_p90_ms']['credvend']}, bare {figures['warm_p90_ms']['bare']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
