"""Benchmark of the LocalStack test infrastructure: start, direct invokes, gateway -> Lambda.

    .venv/bin/python bench/bench_executor.py [--warm N] [--parallel N]

Starts its own LocalStack (instance "bench"), prints the figures, stops it.
"""

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: `credvend_local`

from botocore.credentials import Credentials

from credvend_local import launcher
from credvend_local.sigv4 import signed_request
from credvend_local.support import add_proxy_method, client, create_function, invoke, unique


def timed(action):
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def make_api(ls, function: str) -> str:
    """A REST API with one AWS_IAM proxy method to `function`; returns its execute-api URL."""
    apigw = client(ls, "apigateway")
    function_arn = client(ls, "lambda").get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    api_id = apigw.create_rest_api(name=unique("bench"))["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    add_proxy_method(
        apigw,
        api_id=api_id,
        parent_id=root,
        path="bench",
        http_method="GET",
        function_arn=function_arn,
        region=ls.region,
    )
    apigw.create_deployment(restApiId=api_id, stageName="bench")
    return f"{ls.endpoint}/_aws/execute-api/{api_id}/bench/bench"


def user_credentials(ls) -> Credentials:
    iam = client(ls, "iam")
    name = iam.create_user(UserName=unique("bench-user"))["User"]["UserName"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=50)
    args = parser.parse_args()

    launcher.install()
    ls, start_seconds = timed(lambda: launcher.start("bench", tie_to_parent=True, stop_at_exit=True))
    try:
        print(f"LocalStack start (installed):        {start_seconds:.1f} s")
        function = create_function(ls)
        (_, error, _), cold = timed(lambda: invoke(ls, function))
        assert error is None
        print(f"direct invoke, cold (boto3 import):  {ms(cold)}")
        warm = [timed(lambda: invoke(ls, function))[1] for _ in range(args.warm)]
        print(f"direct invoke, warm median of {args.warm}:   {ms(statistics.median(warm))}")

        fresh = create_function(ls)
        with ThreadPoolExecutor(args.parallel) as pool:
            results, wall = timed(lambda: list(pool.map(lambda _: invoke(ls, fresh), range(args.parallel))))
        failures = [payload for payload, error, _ in results if error]
        processes = len({payload["pid"] for payload, error, _ in results if not error})
        label = f"{args.parallel} parallel cold invokes:"
        print(f"{label:<37}{wall:.1f} s wall, {len(failures)} failed, {processes} environments")
        if failures:
            print(json.dumps(failures[0])[:500])

        url, credentials = make_api(ls, function), user_credentials(ls)
        gateway = []
        for _ in range(args.warm + 1):
            response, seconds = timed(lambda: signed_request("GET", url, credentials, region=ls.region))
            assert response.status_code == 200, response.text
            gateway.append(seconds)
        print(f"API GW (IAM) -> Lambda, warm median: {ms(statistics.median(gateway[1:]))}")
    finally:
        ls.stop()
        launcher.remove_instance(ls.name)


if __name__ == "__main__":
    main()
