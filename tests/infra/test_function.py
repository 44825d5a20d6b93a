"""The vending function: runtime, handler, logs, sizing, configuration by context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from credvend.adapters.sts import BotoSts
from credvend.handler import DEADLINE_MARGIN_SECONDS
from tests.infra.synthesis import BASE_POLICY, Synth, as_list, function_statements, synth


def _function(api: Synth) -> dict[str, Any]:
    return api.resources[api.logical_id(api.stack.vending.function)]["Properties"]


def test_runtime_handler_and_sizing(agnostic: Synth) -> None:
    props = _function(agnostic)
    assert props["Runtime"] == "python3.13"
    assert props["Handler"] == "credvend.handler.handler"
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 20  # under API Gateway's 29 s integration timeout
    # ...and long enough for the deadline margin, one worst-case STS call and a cold start.
    assert props["Timeout"] >= DEADLINE_MARGIN_SECONDS + BotoSts.max_call_seconds + 1
    assert "ReservedConcurrentExecutions" not in props


def test_function_reads_the_bundled_policy(agnostic: Synth) -> None:
    env = _function(agnostic)["Environment"]["Variables"]
    assert env["CREDVEND_POLICY_FILE"] == "policy.json"  # the bundled JSON copy of policy.yaml
    assert env["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"  # never the global endpoint, whatever botocore
    assert env["POWERTOOLS_SERVICE_NAME"] == "credvend"
    assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"


def test_function_logs_to_its_own_group_with_bounded_retention(agnostic: Synth) -> None:
    group_id = _function(agnostic)["LoggingConfig"]["LogGroup"]["Ref"]
    group = agnostic.resources[group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == 365
    # The decision log (who got what) outlives the stack; it expires by its retention.
    assert group["DeletionPolicy"] == "Retain"
    assert group["UpdateReplacePolicy"] == "Retain"


def test_execution_role_has_a_fixed_name_and_only_lambda_trusts_it(agnostic: Synth) -> None:
    role = agnostic.resources[agnostic.function_role_id]["Properties"]
    assert role["RoleName"] == "Credvend-VendingFunction"
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert "ManagedPolicyArns" not in role  # no AWSLambdaBasicExecutionRole: logging is written out


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(
        tmp_path_factory.mktemp("configured"),
        BASE_POLICY,
        context={
            "architecture": "x86_64",
            "reserved_concurrency": "20",
            "log_retention_days": 30,
            "stack_name": "CredvendStaging",
        },
    )


def test_context_configures_the_function(configured: Synth) -> None:
    props = _function(configured)
    assert props["Architectures"] == ["x86_64"]
    assert props["ReservedConcurrentExecutions"] == 20
    group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert configured.resources[group_id]["Properties"]["RetentionInDays"] == 30
    assert configured.stack.stack_name == "CredvendStaging"
    role = configured.resources[configured.function_role_id]["Properties"]
    assert role["RoleName"] == "CredvendStaging-VendingFunction"


def test_real_bundle_carries_the_package_and_the_same_policy(tmp_path) -> None:
    real = synth(tmp_path, BASE_POLICY, context={"architecture": "x86_64"}, real_bundle=True)
    assert _function(real)["Handler"] == "credvend.handler.handler"
    asset = _asset_dir(real)
    assert (asset / "credvend" / "handler.py").is_file()
    assert (asset / "credvend_policy" / "trust.py").is_file()
    assert (asset / "policy.yaml").read_text() == BASE_POLICY


def _asset_dir(api: Synth) -> Path:
    """The staged function asset in cdk.out (the directory Lambda will unzip)."""
    code = _function(api)["Code"]
    asset_hash = code["S3Key"].removesuffix(".zip")
    return api.outdir / f"asset.{asset_hash}"


def test_tracing_is_off_unless_asked(agnostic: Synth) -> None:
    props = _function(agnostic)
    assert "TracingConfig" not in props
    assert props["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true"


def test_tracing_on_adds_only_xray_on_star(tmp_path: Path) -> None:
    traced = synth(tmp_path, BASE_POLICY, context={"tracing": "true"})  # cdk-nag passes, or this raises
    assert _function(traced)["TracingConfig"] == {"Mode": "Active"}
    (stage,) = traced.of_type("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["TracingEnabled"] is True
    # Traced, the stage needs no X-Ray acknowledgement (checkov CKV_AWS_73 passes on its own).
    skips = stage.get("Metadata", {}).get("checkov", {}).get("skip", [])
    assert "CKV_AWS_73" not in {skip["id"] for skip in skips}
    # The function waits for X-Ray's permissions, not redundantly for its role (cfn-lint W3005).
    default_policy = traced.logical_id(traced.stack.vending.role.node.find_child("DefaultPolicy"))
    assert traced.resources[traced.logical_id(traced.stack.vending.function)]["DependsOn"] == [default_policy]
    on_star = sorted(
        action
        for statement in function_statements(traced)
        if "*" in as_list(statement["Resource"])
        for action in as_list(statement["Action"])
    )
    assert on_star == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def _checkov_skips(api: Synth, logical_id: str) -> dict[str, str]:
    skips = api.resources[logical_id].get("Metadata", {}).get("checkov", {}).get("skip", [])
    return {skip["id"]: skip["comment"] for skip in skips}


def test_checkov_findings_that_do_not_apply_say_why_in_the_template(agnostic: Synth, configured: Synth) -> None:
    function_id = agnostic.logical_id(agnostic.stack.vending.function)
    skips = _checkov_skips(agnostic, function_id)
    assert set(skips) == {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}
    assert all(len(reason) > 40 for reason in skips.values())  # a reason, not a bare id
    log_group_id = _function(agnostic)["LoggingConfig"]["LogGroup"]["Ref"]
    assert set(_checkov_skips(agnostic, log_group_id)) == {"CKV_AWS_158"}
    # With reserved concurrency configured, the concurrency check passes on its own: no skip.
    configured_skips = _checkov_skips(configured, configured.logical_id(configured.stack.vending.function))
    assert "CKV_AWS_115" not in configured_skips
