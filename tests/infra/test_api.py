"""API Gateway: the routes, SigV4 on every method, validation, throttling, logs."""

from __future__ import annotations

import json
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


def test_created_cloudwatch_role_and_account_setting_survive_destroy(agnostic: Synth) -> None:
    # Shared by every API in the account and Region: deleting them would stop their logging.
    (account,) = agnostic.of_type("AWS::ApiGateway::Account").values()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert agnostic.resources[role_id]["DeletionPolicy"] == "Retain"
    assert agnostic.resources[role_id]["UpdateReplacePolicy"] == "Retain"
    assert account["DeletionPolicy"] == "Retain"


def test_execution_log_group_is_the_stacks_with_bounded_retention(agnostic: Synth) -> None:
    group_id = agnostic.logical_id(agnostic.stack.api.execution_log_group)
    group = agnostic.resources[group_id]
    (api_id,) = agnostic.of_type("AWS::ApiGateway::RestApi")
    assert group["Properties"]["LogGroupName"] == {
        "Fn::Join": ["", ["API-Gateway-Execution-Logs_", {"Ref": api_id}, f"/{STAGE_NAME}"]]
    }
    assert group["Properties"]["RetentionInDays"] == 365
    # The stage (which starts writing execution logs) waits for the group.
    (stage_id,) = agnostic.of_type("AWS::ApiGateway::Stage")
    assert group_id in agnostic.resources[stage_id]["DependsOn"]


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


IAM_ROUTE_RESOURCES = ["execute-api:/*/POST/credentials", "execute-api:/*/GET/credentials/*"]


def test_resource_policy_admits_the_callers_accounts_on_the_iam_routes(agnostic: Synth) -> None:
    allow, _, _ = _resource_policy(agnostic)["Statement"]
    assert allow["Effect"] == "Allow"
    assert allow["Action"] == "execute-api:Invoke"
    assert allow["Resource"] == IAM_ROUTE_RESOURCES
    assert allow["Principal"] == {"AWS": ["arn:aws:iam::123456789012:root"]}  # both callers' account
    assert "Condition" not in allow  # the function authorizes each principal itself


def test_resource_policy_denies_everyone_outside_those_accounts(agnostic: Synth) -> None:
    deny = _resource_policy(agnostic)["Statement"][1]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Action"] == "execute-api:Invoke"
    assert deny["Resource"] == IAM_ROUTE_RESOURCES
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": ["123456789012"]}}


def test_public_routes_are_open_to_anyone_and_outside_the_deny() -> None:
    from infra.components.vending_api import invoke_policy

    document = invoke_policy(
        ["arn:aws:iam::123456789012:role/a"],
        iam_routes=[("POST", "/credentials"), ("GET", "/credentials/{role}"), ("POST", "/oidc/credentials")],
        public_routes=[("GET", "/.well-known/jwks.json"), ("POST", "/oidc/credentials")],
    )
    assert document is not None
    allow, deny, public = document["Statement"]
    assert public == {
        "Sid": "PublicRoutes",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": ["execute-api:/*/GET/.well-known/jwks.json", "execute-api:/*/POST/oidc/credentials"],
    }
    assert deny["Resource"] == allow["Resource"] == IAM_ROUTE_RESOURCES


def test_without_sigv4_callers_the_iam_routes_are_shut_to_everyone() -> None:
    from infra.components.vending_api import invoke_policy

    document = invoke_policy([], public_routes=[("GET", "/.well-known/jwks.json")])
    assert document is not None
    deny, public = document["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Resource"]) == ("Deny", "*", IAM_ROUTE_RESOURCES)
    assert "Condition" not in deny
    assert public["Resource"] == ["execute-api:/*/GET/.well-known/jwks.json"]


def test_public_routes_added_to_the_api_reach_its_policy(tmp_path) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_apigateway as apigw

    from infra.assembly import build_app
    from tests.infra.synthesis import CDK_CONTEXT, stub_asset

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(BASE_POLICY)
    app = cdk.App(context={**CDK_CONTEXT, "policy": str(policy_file)}, outdir=str(tmp_path / "cdk.out"))
    stack = build_app(app, code_dir=stub_asset(tmp_path / "asset"), environ={})
    # what the issuer's discovery route will do: a method without auth, declared public
    jwks = stack.api.api.root.add_resource(".well-known").add_resource("jwks.json")
    jwks.add_method("GET", apigw.MockIntegration(), authorization_type=apigw.AuthorizationType.NONE)
    stack.api.add_public_route("GET", "/.well-known/jwks.json")
    document = stack.resolve(stack.api.api.node.default_child.policy)
    _, deny, public = document["Statement"]
    assert public["Resource"] == [*OIDC_ROUTE_RESOURCES, "execute-api:/*/GET/.well-known/jwks.json"]
    assert deny["Resource"] == IAM_ROUTE_RESOURCES


def test_an_organization_replaces_the_account_list() -> None:
    from infra.components.vending_api import invoke_policy

    document = invoke_policy(["arn:aws:iam::123456789012:role/a"], organization_id="o-a1b2c3d4e5")
    assert document is not None
    allow, deny = document["Statement"]
    assert allow["Principal"] == "*"
    assert allow["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}


def test_resource_policy_size_does_not_grow_with_callers() -> None:
    from credvend_local.policy_gen import generate_policy
    from credvend_policy import parse_policy
    from credvend_policy.quotas import API_RESOURCE_POLICY, iam_size
    from infra.components.vending_api import invoke_policy

    sizes = []
    for callers in (20, 200, 1000):
        policy = parse_policy(json.dumps(generate_policy(callers=callers, roles=50)), is_json=True)
        document = invoke_policy([arn for caller in policy.callers.values() for arn in caller.iam_principals])
        assert document is not None
        sizes.append(iam_size(document))
    assert sizes[0] == sizes[1] == sizes[2] < API_RESOURCE_POLICY


def test_the_documented_maximum_of_accounts_fits_the_quota() -> None:
    from credvend_policy.api_policy import MAX_CALLER_ACCOUNTS
    from credvend_policy.quotas import API_RESOURCE_POLICY, iam_size
    from infra.components.vending_api import invoke_policy

    principals = [f"arn:aws-us-gov:iam::{index:012d}:role/caller" for index in range(MAX_CALLER_ACCOUNTS)]
    # with room for the public routes of the OIDC issuer and OIDC callers
    public = [("GET", "/.well-known/openid-configuration"), ("GET", "/.well-known/jwks.json")]
    public += [("POST", "/oidc/credentials"), ("GET", "/oidc/credentials/{role}")]
    document = invoke_policy(principals, public_routes=public)
    assert document is not None
    assert iam_size(document) <= API_RESOURCE_POLICY


OIDC_ROUTE_RESOURCES = ["execute-api:/*/POST/oidc/credentials", "execute-api:/*/GET/oidc/credentials/*"]


def test_anonymous_callers_may_invoke_exactly_the_oidc_routes(agnostic: Synth) -> None:
    allow, deny, public = _resource_policy(agnostic)["Statement"]
    assert public["Effect"] == "Allow"
    assert public["Principal"] == "*"
    assert public["Action"] == "execute-api:Invoke"
    assert public["Resource"] == OIDC_ROUTE_RESOURCES
    assert "Condition" not in public
    # ... and the IAM routes' Allow and Deny leave them alone
    assert not set(OIDC_ROUTE_RESOURCES) & (set(allow["Resource"]) | set(deny["Resource"]))


def test_no_iam_callers_means_the_iam_routes_shut_and_the_oidc_routes_open(tmp_path) -> None:
    lonely = synth(tmp_path, "version: 1\nroles:\n  solo:\n    create: true\n")
    (rest_api,) = lonely.of_type("AWS::ApiGateway::RestApi").values()
    deny, public = rest_api["Properties"]["Policy"]["Statement"]
    assert (deny["Effect"], deny["Resource"]) == ("Deny", IAM_ROUTE_RESOURCES)
    assert public["Resource"] == OIDC_ROUTE_RESOURCES
