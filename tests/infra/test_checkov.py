"""checkov on a fresh synth: the generic API Gateway checks that do not apply to a credential
broker are acknowledged in the template (Metadata.checkov.skip), on the resource, with why."""

from __future__ import annotations

from typing import Any

from tests.infra.synthesis import Synth


def checkov_skips(api: Synth, logical_id: str) -> dict[str, str]:
    skips = api.resources[logical_id].get("Metadata", {}).get("checkov", {}).get("skip", [])
    return {skip["id"]: skip["comment"] for skip in skips}


def _only(api: Synth, resource_type: str) -> tuple[str, dict[str, Any]]:
    (item,) = api.of_type(resource_type).items()
    return item


def test_the_stage_is_never_cached_and_tracing_is_a_setting(agnostic: Synth) -> None:
    stage_id, stage = _only(agnostic, "AWS::ApiGateway::Stage")
    assert stage["Properties"].get("CacheClusterEnabled") is not True
    assert all(not setting.get("CachingEnabled") for setting in stage["Properties"].get("MethodSettings", []))
    skips = checkov_skips(agnostic, stage_id)
    assert set(skips) == {"CKV_AWS_120", "CKV_AWS_73"}
    assert all(len(reason) > 40 for reason in skips.values())


def test_the_api_log_groups_say_why_they_use_no_kms_key(agnostic: Synth) -> None:
    api = agnostic.stack.api
    for group in (api.access_log_group, api.execution_log_group):
        logical_id = agnostic.logical_id(group)
        assert "KmsKeyId" not in agnostic.resources[logical_id]["Properties"]
        assert set(checkov_skips(agnostic, logical_id)) == {"CKV_AWS_158"}


def test_only_the_unauthenticated_methods_are_acknowledged_as_open(agnostic: Synth) -> None:
    for logical_id, method in agnostic.of_type("AWS::ApiGateway::Method").items():
        open_route = method["Properties"]["AuthorizationType"] == "NONE"
        assert ("CKV_AWS_59" in checkov_skips(agnostic, logical_id)) is open_route, logical_id
