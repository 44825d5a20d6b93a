"""credvend as an OIDC issuer (CONTRACT §5, §9): the signing key and who may sign, the IAM
OIDC provider, the web_identity roles' trust, the function's settings and permissions, and
exactly two public routes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.synthesis import ACCOUNT_ENV, BASE_POLICY, Synth, as_list, function_statements, statements_of, synth
from tests.infra.test_api import _routes

WEB_POLICY = BASE_POLICY.replace(
    "  dormant:\n    create: true\n",
    "  dormant:\n    create: true\n"
    "  batch-writer:\n    create: true\n    max_session_duration: 43200\n    issuance: web_identity\n"
    "  partner-web:\n    arn: arn:aws:iam::210987654321:role/PartnerWeb\n    max_session_duration: 43200\n"
    "    issuance: web_identity\n",
).replace(
    "      - role: deployer\n        max_duration_seconds: 43200\n",
    "      - role: deployer\n        max_duration_seconds: 43200\n"
    "      - role: batch-writer\n        max_duration_seconds: 43200\n"
    "      - role: partner-web\n",
)
PUBLIC = {"GET /.well-known/openid-configuration", "GET /.well-known/jwks.json"}
# Token-authenticated (CONTRACT §10): no IAM auth at the gateway either, on every stack.
OIDC_CALLER_ROUTES = {"POST /oidc/credentials", "GET /oidc/credentials/{role}"}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    assert "issuance: web_identity" in WEB_POLICY and "- role: batch-writer" in WEB_POLICY
    return synth(tmp_path_factory.mktemp("web"), WEB_POLICY, environ=ACCOUNT_ENV)


def _resolve_join(value: Any, *, providers: dict[str, Any] | None = None) -> Any:
    """A CloudFormation string as it deploys, with the RestApi's id ("API"), Region and suffix
    filled in, and an OIDC provider's Arn as IAM makes it from its Url."""
    providers = providers or {}

    def resolve(item: Any) -> Any:
        if isinstance(item, str):
            return item
        if "Fn::Join" in item:
            separator, parts = item["Fn::Join"]
            return separator.join(str(resolve(part)) for part in parts)
        if "Fn::Select" in item:
            index, values = item["Fn::Select"]
            return resolve(values)[index]
        if "Fn::Split" in item:
            separator, source = item["Fn::Split"]
            return str(resolve(source)).split(separator)
        ref = item.get("Ref")
        known = {"AWS::Region": "eu-west-1", "AWS::URLSuffix": "amazonaws.com", "AWS::Partition": "aws"}
        if ref in known:
            return known[ref]
        if ref == "AWS::AccountId":
            return "111122223333"
        if ref is not None:
            return "API" if ref.startswith("Api") else f"<{ref}>"
        if "Fn::GetAtt" in item:
            logical_id, attribute = item["Fn::GetAtt"]
            if logical_id in providers and attribute == "Arn":
                url = str(resolve(providers[logical_id]["Properties"]["Url"]))
                return f"arn:aws:iam::111122223333:oidc-provider/{url.removeprefix('https://')}"
            return f"<{logical_id}.{attribute}>"
        raise AssertionError(f"unexpected intrinsic {item}")

    return resolve(value)


def _resolver(web: Synth) -> Any:
    providers = web.of_type("AWS::IAM::OIDCProvider")
    return lambda value: _resolve_join(value, providers=providers)


def _issuer(web: Synth) -> str:
    env = next(iter(web.of_type("AWS::Lambda::Function").values()))["Properties"]["Environment"]["Variables"]
    return str(_resolver(web)(env["CREDVEND_ISSUER"]))


def _key(web: Synth) -> tuple[str, dict[str, Any]]:
    ((key_id, key),) = web.of_type("AWS::KMS::Key").items()
    return key_id, key["Properties"]


def test_the_signing_key_is_rsa_2048_for_signing(web: Synth) -> None:
    _, key = _key(web)
    assert key["KeySpec"] == "RSA_2048"
    assert key["KeyUsage"] == "SIGN_VERIFY"


def test_only_the_execution_role_may_sign_with_the_key(web: Synth) -> None:
    _, key = _key(web)
    statements = statements_of(key["KeyPolicy"])
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert len(denies) == 1
    (deny,) = denies
    assert as_list(deny["Action"]) == ["kms:Sign"]
    assert deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": [web.function_role_id, "Arn"]}}}
    # key administration stays with the account (the Deny touches only kms:Sign)
    admin = [s for s in statements if s["Effect"] == "Allow"]
    assert any("kms:*" in as_list(s["Action"]) for s in admin)


def test_the_function_may_sign_with_that_key_only_and_only_from_inside_it(web: Synth) -> None:
    key_id, _ = _key(web)
    kms = [s for s in function_statements(web) if any(str(a).startswith("kms:") for a in as_list(s["Action"]))]
    assert len(kms) == 1
    (statement,) = kms
    assert sorted(as_list(statement["Action"])) == ["kms:GetPublicKey", "kms:Sign"]
    assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [key_id, "Arn"]}]
    ((function_id, _),) = web.of_type("AWS::Lambda::Function").items()
    assert statement["Condition"] == {"ArnEquals": {"lambda:SourceFunctionArn": {"Fn::GetAtt": [function_id, "Arn"]}}}


def test_the_function_knows_its_issuer_and_key(web: Synth) -> None:
    key_id, _ = _key(web)
    env = next(iter(web.of_type("AWS::Lambda::Function").values()))["Properties"]["Environment"]["Variables"]
    assert _issuer(web) == "https://API.execute-api.eu-west-1.amazonaws.com/v1"
    assert env["CREDVEND_SIGNING_KEY"] == {"Fn::GetAtt": [key_id, "Arn"]}
    # built from the RestApi's id only: no Stage or Deployment in it (that would be a cycle)
    text = json.dumps(env["CREDVEND_ISSUER"])
    assert "Deployment" not in text and "Stage" not in text


def test_the_oidc_provider_is_native_for_the_issuer_and_sts(web: Synth) -> None:
    ((_, provider),) = web.of_type("AWS::IAM::OIDCProvider").items()
    assert _resolve_join(provider["Properties"]["Url"]) == _issuer(web)
    # the function's issuer is read back from the provider's ARN: the same string IAM registered
    assert "Fn::GetAtt" in json.dumps(
        next(iter(web.of_type("AWS::Lambda::Function").values()))["Properties"]["Environment"]
    )
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    assert not web.of_type("Custom::AWSCDKOpenIdConnectProvider")
    assert not web.of_type("AWS::CloudFormation::CustomResource")


def test_a_created_web_identity_role_trusts_the_issuer_for_its_callers_only(web: Synth) -> None:
    roles = {r["Properties"].get("RoleName"): r["Properties"] for r in web.of_type("AWS::IAM::Role").values()}
    batch = roles["BatchWriter"]
    assert batch["MaxSessionDuration"] == 43200
    document = json.loads(_resolver(web)(batch["AssumeRolePolicyDocument"]))
    (statement,) = document["Statement"]
    provider_arn = "arn:aws:iam::111122223333:oidc-provider/API.execute-api.eu-west-1.amazonaws.com/v1"
    assert statement["Principal"] == {"Federated": provider_arn}
    assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity", "sts:TagSession"]
    host = "API.execute-api.eu-west-1.amazonaws.com/v1"
    assert statement["Condition"] == {
        "StringEquals": {f"{host}:aud": "sts.amazonaws.com", f"{host}:sub": ["ci"], "sts:SourceIdentity": ["ci"]},
        "NumericLessThanEqualsIfExists": {"sts:DurationSeconds": 43200},
    }
    # assume_role roles keep trusting the execution role
    deployer = roles["CredvendDeployer"]["AssumeRolePolicyDocument"]
    assert deployer["Statement"][0]["Principal"] == {"AWS": {"Fn::GetAtt": [web.function_role_id, "Arn"]}}


def test_the_function_has_no_sts_permission_on_web_identity_roles(web: Synth) -> None:
    resources = [
        json.dumps(r)
        for s in function_statements(web)
        if any(str(a).startswith("sts:") for a in as_list(s["Action"]))
        for r in as_list(s["Resource"])
    ]
    assert resources
    assert not any("BatchWriter" in r or "PartnerWeb" in r for r in resources)


def test_exactly_the_discovery_and_oidc_caller_routes_are_unauthenticated(web: Synth) -> None:
    routes = _routes(web)
    public = {route for route, props in routes.items() if props["AuthorizationType"] != "AWS_IAM"}
    assert public == PUBLIC | OIDC_CALLER_ROUTES
    assert all(routes[route]["AuthorizationType"] == "NONE" for route in public)


def test_the_public_discovery_routes_say_why_checkov_may_find_them_open(web: Synth) -> None:
    assert web.stack.issuer is not None
    for method in web.stack.issuer.methods:
        metadata = web.resources[web.logical_id(method)].get("Metadata", {})
        assert {skip["id"] for skip in metadata["checkov"]["skip"]} == {"CKV_AWS_59"}


def test_the_resource_policy_lets_anyone_invoke_exactly_the_public_routes(web: Synth) -> None:
    ((_, api),) = web.of_type("AWS::ApiGateway::RestApi").items()
    statements = statements_of(web.stack.resolve(api["Properties"]["Policy"]))
    anonymous = [s for s in statements if s["Principal"] in ("*", {"AWS": "*"}) and "Condition" not in s]
    assert len(anonymous) == 1
    assert anonymous[0]["Effect"] == "Allow"
    public = sorted(as_list(anonymous[0]["Resource"]))
    assert public == [
        "execute-api:/*/GET/.well-known/jwks.json",
        "execute-api:/*/GET/.well-known/openid-configuration",
        "execute-api:/*/GET/oidc/credentials/*",
        "execute-api:/*/POST/oidc/credentials",
    ]
    # and no Deny reaches them: STS is an anonymous caller from outside every account
    for deny in (s for s in statements if s["Effect"] == "Deny"):
        assert not set(public) & set(as_list(deny["Resource"]))


def test_an_external_web_identity_role_gets_its_provider_and_trust_in_the_assembly(web: Synth) -> None:
    written = json.loads((web.outdir / "credvend-trust-policies" / "partner-web.json").read_text())
    (statement,) = written["Statement"]
    host = "API_ID.execute-api.eu-west-1.amazonaws.com/v1"
    assert statement["Principal"] == {"Federated": f"arn:aws:iam::210987654321:oidc-provider/{host}"}
    assert statement["Condition"]["StringEquals"][f"{host}:sub"] == ["ci"]
    assert "IssuerUrl" in web.outputs


def test_without_web_identity_roles_there_is_no_key_provider_or_discovery_route(in_account: Synth) -> None:
    assert not in_account.of_type("AWS::KMS::Key")
    assert not in_account.of_type("AWS::IAM::OIDCProvider")
    routes = _routes(in_account)
    assert all(
        props["AuthorizationType"] == "AWS_IAM" for route, props in routes.items() if route not in OIDC_CALLER_ROUTES
    )
    assert not set(routes) & PUBLIC
    env = next(iter(in_account.of_type("AWS::Lambda::Function").values()))["Properties"]["Environment"]["Variables"]
    assert "CREDVEND_ISSUER" not in env


def test_an_agnostic_synth_with_web_identity_works(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No account or Region at synth (what `make synth` does without credentials): no cycle, nag clean."""
    agnostic = synth(tmp_path_factory.mktemp("web-agnostic"), WEB_POLICY)
    assert agnostic.of_type("AWS::IAM::OIDCProvider")


def test_a_web_identity_role_whose_callers_do_not_fit_keeps_aud_and_is_warned_about(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import yaml
    from aws_cdk.assertions import Annotations, Match

    from credvend_local.policy_gen import generate_policy

    document = generate_policy(callers=300, roles=1)
    (role,) = document["roles"].values()
    role.pop("external_id", None)
    role["issuance"] = "web_identity"
    crowded = synth(tmp_path_factory.mktemp("crowded-web"), yaml.safe_dump(document), environ=ACCOUNT_ENV)
    (warning,) = Annotations.from_stack(crowded.stack).find_warning("*", Match.string_like_regexp("role-000"))
    assert "300 granted callers do not fit" in str(warning.entry.data)
    (cfn_role,) = [
        r for r in crowded.of_type("AWS::IAM::Role").values() if r["Properties"].get("RoleName") == "Role000"
    ]
    trust = json.loads(_resolver(crowded)(cfn_role["Properties"]["AssumeRolePolicyDocument"]))
    (statement,) = trust["Statement"]
    host = "API.execute-api.eu-west-1.amazonaws.com/v1"
    assert statement["Condition"] == {
        "Null": {"sts:SourceIdentity": "false"},
        "StringEquals": {f"{host}:aud": "sts.amazonaws.com"},
        "NumericLessThanEqualsIfExists": {"sts:DurationSeconds": role.get("max_session_duration", 3600)},
    }
