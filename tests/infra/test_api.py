"""API Gateway: the routes, SigV4 on every method, validation, throttling, logs."""

from __future__ import annotations

from typing import Any

import pytest

from infra.components.vending_api import STAGE_NAME
from tests.infra.synthesis import BASE_POLICY, Synth, synth


def _paths(api: Synth) -> dict[str, str]:
    """Resource logical id -> full path, built from PathPart/ParentId (no ids hard-coded)."""
    resources = api.of_type("AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            props = resources[logical_id]["Properties"]
            parent = props["ParentId"]
            prefix = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
            paths[logical_id] = f"{prefix}/{props['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths


def _routes(api: Synth) -> dict[str, dict[str, Any]]:
    paths = _paths(api)
    routes = {}
    for method in api.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = props["ResourceId"]
        path = paths[resource["Ref"]] if "Ref" in resource else "/"
        routes[f"{props['HttpMethod']} {path}"] = props
    return routes


OIDC_ROUTES = {"POST /oidc/credentials", "GET /oidc/credentials/{role}"}


def test_the_contract_routes_exist_and_nothing_else(agnostic: Synth) -> None:
    assert set(_routes(agnostic)) == {"POST /credentials", "GET /credentials/{role}", *OIDC_ROUTES}


def test_every_method_requires_sigv4_but_exactly_the_oidc_routes(agnostic: Synth) -> None:
    routes = _routes(agnostic)
    assert routes
    for route, props in routes.items():
        expected = "NONE" if route in OIDC_ROUTES else "AWS_IAM"
        assert props["AuthorizationType"] == expected, route
    assert routes["GET /oidc/credentials/{role}"]["RequestParameters"]["method.request.path.role"] is True


def test_oidc_routes_are_throttled_below_the_stage(agnostic: Synth) -> None:
    (stage,) = agnostic.of_type("AWS::ApiGateway::Stage").values()
    settings = {(s["HttpMethod"], s["ResourcePath"]): s for s in stage["Properties"]["MethodSettings"]}
    stage_wide = settings[("*", "/*")]
    for method, path in (("POST", "/~1oidc~1credentials"), ("GET", "/~1oidc~1credentials~1{role}")):
        oidc = settings[(method, path)]
        assert oidc["ThrottlingRateLimit"] < stage_wide["ThrottlingRateLimit"]
        assert oidc["ThrottlingBurstLimit"] < stage_wide["ThrottlingBurstLimit"]
        assert oidc["DataTraceEnabled"] is False


def test_methods_proxy_to_the_vending_function(agnostic: Synth) -> None:
    function_id = agnostic.logical_id(agnostic.stack.vending.function)
    for route, props in _routes(agnostic).items():
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY", route
        assert {"Fn::GetAtt": [function_id, "Arn"]} in integration["Uri"]["Fn::Join"][1], route


def test_every_method_has_a_request_validator_and_get_requires_the_role(agnostic: Synth) -> None:
    validators = agnostic.of_type("AWS::ApiGateway::RequestValidator")
    routes = _routes(agnostic)
    for route, props in routes.items():
        validator = validators[props["RequestValidatorId"]["Ref"]]["Properties"]
        assert validator["ValidateRequestParameters"] is True, route
    assert routes["GET /credentials/{role}"]["RequestParameters"]["method.request.path.role"] is True


def test_stage_throttles_logs_and_never_traces_data(agnostic: Synth) -> None:
    (stage,) = agnostic.of_type("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == STAGE_NAME
    settings = next(s for s in props["MethodSettings"] if (s["HttpMethod"], s["ResourcePath"]) == ("*", "/*"))
    assert settings["ThrottlingRateLimit"] == 50
    assert settings["ThrottlingBurstLimit"] == 100
    assert settings["DataTraceEnabled"] is False  # would log full responses: credentials
    assert settings["LoggingLevel"] in {"ERROR", "INFO"}
    access_logs = props["AccessLogSetting"]
    log_group_id = agnostic.logical_id(agnostic.stack.api.access_log_group)
    assert log_group_id in str(access_logs["DestinationArn"])
    assert agnostic.resources[log_group_id]["Properties"]["RetentionInDays"] == 365
    assert "$context.identity.userArn" in access_logs["Format"]


def test_throttling_comes_from_context(tmp_path) -> None:
    custom = synth(tmp_path, BASE_POLICY, context={"throttle_rate_limit": "5", "throttle_burst_limit": 7})
    (stage,) = custom.of_type("AWS::ApiGateway::Stage").values()
    by_path = {s["ResourcePath"]: s for s in stage["Properties"]["MethodSettings"]}
    settings = by_path["/*"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (5, 7)
    assert (
        by_path["/~1oidc~1credentials"]["ThrottlingRateLimit"],
        by_path["/~1oidc~1credentials"]["ThrottlingBurstLimit"],
    ) == (
        2.5,
        3,
    )


def test_created_cloudwatch_role_is_deleted_with_the_stack(agnostic: Synth) -> None:
    (account,) = agnostic.of_type("AWS::ApiGateway::Account").values()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert agnostic.resources[role_id]["DeletionPolicy"] == "Delete"
    assert account["DeletionPolicy"] == "Delete"


@pytest.fixture(scope="module")
def without_cloudwatch_role(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(tmp_path_factory.mktemp("no-cw-role"), BASE_POLICY, context={"api_cloudwatch_role": "false"})


def test_cloudwatch_role_can_be_left_to_the_account(without_cloudwatch_role: Synth) -> None:
    assert without_cloudwatch_role.of_type("AWS::ApiGateway::Account") == {}
    roles = without_cloudwatch_role.of_type("AWS::IAM::Role").values()
    assert not any("apigateway.amazonaws.com" in str(role["Properties"]["AssumeRolePolicyDocument"]) for role in roles)


def test_api_url_is_the_only_endpoint_output(agnostic: Synth) -> None:
    url_outputs = [key for key, output in agnostic.outputs.items() if ".execute-api." in str(output["Value"])]
    assert url_outputs == ["ApiUrl"]
    parts = agnostic.outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert parts[0] == "https://"
    assert parts[-1] == "/"


def _resource_policy(api: Synth) -> dict[str, Any]:
    (rest_api,) = api.of_type("AWS::ApiGateway::RestApi").values()
    return rest_api["Properties"]["Policy"]


def test_resource_policy_lets_exactly_the_policy_callers_invoke(agnostic: Synth) -> None:
    statement, _ = _resource_policy(agnostic)["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"] == "execute-api:/*"
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}  # both callers' account
    assert statement["Condition"] == {
        "ArnLike": {
            "aws:PrincipalArn": [
                "arn:aws:iam::123456789012:role/billing-api-task",
                "arn:aws:iam::123456789012:role/*/billing-api-task",  # the same role under a path
                "arn:aws:iam::123456789012:user/ci",
            ]
        }
    }


def test_anonymous_callers_may_invoke_exactly_the_oidc_routes(agnostic: Synth) -> None:
    _, public = _resource_policy(agnostic)["Statement"]
    assert public["Effect"] == "Allow"
    assert public["Principal"] == {"AWS": "*"}
    assert public["Action"] == "execute-api:Invoke"
    assert sorted(public["Resource"]) == [
        "execute-api:/*/GET/oidc/credentials/*",
        "execute-api:/*/POST/oidc/credentials",
    ]
    assert "Condition" not in public


def test_no_iam_callers_means_only_the_oidc_routes_in_the_resource_policy(tmp_path) -> None:
    lonely = synth(tmp_path, "version: 1\nroles:\n  solo:\n    create: true\n")
    (rest_api,) = lonely.of_type("AWS::ApiGateway::RestApi").values()
    (statement,) = rest_api["Properties"]["Policy"]["Statement"]
    assert statement["Sid"] == "TokenAuthenticatedRoutes"
