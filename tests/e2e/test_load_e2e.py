"""200 concurrent vends through the gateway: zero errors, every credential issued once.

Latency figures (p50/p99/max, throughput) are printed to the terminal, not asserted.
Loopback only. The stage throttle is raised above the burst first (on AWS, the default
50 rps / 100 burst would refuse part of it with 429; LocalStack does not enforce stage
throttling, so this only keeps the deployment what it would have to be). The host-process
executor starts one process per execution environment; 200 Python cold starts at once on a
2-core machine take minutes, so the function is bounded to a few warmed environments and the
other vends queue for one (credvend_local/plugin/credvend_localstack/lambda_bound.py): the
figures include that queueing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from credvend_local import deploy as cdk_deploy
from credvend_local.load import bound_environments, vend_burst, warm_up

pytestmark = pytest.mark.e2e
VENDS = 200
ENVIRONMENTS = 10
THROTTLE = {"throttle_rate_limit": "1000", "throttle_burst_limit": "1000"}


@pytest.fixture(scope="module")
def load_deployment(localstack, deployment, deployed_policy_file, tmp_path_factory) -> cdk_deploy.Deployment:
    """The session's stack, its stage throttle raised (same policy: only the stage changes)."""
    workdir = tmp_path_factory.mktemp("cdk-load")
    raised = cdk_deploy.deploy(localstack.endpoint, policy_file=deployed_policy_file, workdir=workdir, context=THROTTLE)
    assert raised.api_url == deployment.api_url
    # What was deployed (LocalStack keeps no stage method settings to read back).
    stages = [
        resource["Properties"]
        for template in (workdir / "cdk.out").glob("*.template.json")
        for resource in json.loads(template.read_text())["Resources"].values()
        if resource["Type"] == "AWS::ApiGateway::Stage"
    ]
    assert stages, "no API stage in the deployed templates"
    for settings in (setting for stage in stages for setting in stage["MethodSettings"]):
        assert settings["ThrottlingBurstLimit"] >= VENDS and settings["ThrottlingRateLimit"] >= VENDS
    return raised


@pytest.fixture
def bounded(endpoint: str) -> Iterator[int]:
    bound_environments(endpoint, ENVIRONMENTS)
    try:
        yield ENVIRONMENTS
    finally:
        bound_environments(endpoint, None)


def test_200_concurrent_vends_all_succeed_each_issued_once(
    load_deployment, callers, bounded, sts_journal, localstack, capsys
) -> None:
    warm = warm_up(load_deployment.api_url, callers.user, bounded)
    assert not warm.errors, dict(warm.errors)

    mark = sts_journal.mark()
    result = vend_burst(
        load_deployment.api_url, callers.user, requests_total=VENDS, concurrency=VENDS, localstack_pid=localstack.pid
    )

    with capsys.disabled():
        print(f"\n[load] {result.summary()}\n[load] (at most {bounded} execution environments; the rest queue)")
    assert not result.errors, dict(result.errors)
    assert len(result.latencies) == VENDS
    assert len(set(result.access_key_ids)) == VENDS  # 200 distinct credentials
    issued = [e["access_key_id"] for e in sts_journal.function_calls(after=mark) if e["outcome"] == "allowed"]
    assert sorted(issued) == sorted(result.access_key_ids)  # each by exactly one AssumeRole, no other
