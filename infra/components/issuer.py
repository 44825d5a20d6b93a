"""credvend as an OpenID Connect issuer (CONTRACT §9): the signing key, the IAM OIDC
provider, and the two public discovery routes.

Built only when the policy file has a ``web_identity`` role: a deployment that only
vends with ``assume_role`` pays for no KMS key and exposes no unauthenticated route.
"""

from __future__ import annotations

from aws_cdk import Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from credvend_policy.trust import STS_AUDIENCE, issuer_host_path
from infra.nag import acknowledge, acknowledge_checkov

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
PUBLIC_ROUTES: tuple[tuple[str, str], ...] = (("GET", DISCOVERY_PATH), ("GET", JWKS_PATH))


def issuer_url(*, rest_api_id: str, region: str, url_suffix: str, stage: str) -> str:
    """The API stage's URL, built from the RestApi's id (not from the stage or deployment:
    the function's environment names the issuer, and the deployment depends on the function,
    so referring to it would be a cycle)."""
    return f"https://{rest_api_id}.execute-api.{region}.{url_suffix}/{stage}"


class OidcIssuer(Construct):
    """The signing key, the OIDC provider for ``issuer`` and the discovery routes on ``api``.

    The key's policy keeps the account's default statement (administrators manage the key)
    and adds an explicit Deny of ``kms:Sign`` to every principal but ``signer_role_arn``: the
    default statement alone would let any identity with ``kms:*`` in the account mint tokens,
    that is 12-hour credentials for any caller of any ``web_identity`` role.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigw.RestApi,
        integration: apigw.Integration,
        stage_name: str,
        signer_role_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        url = issuer_url(
            rest_api_id=api.rest_api_id, region=stack.region, url_suffix=stack.url_suffix, stage=stage_name
        )

        self.signing_key = kms.Key(
            self,
            "SigningKey",
            description="credvend OIDC issuer: signs the web identity tokens of web_identity vends (RS256)",
            key_spec=kms.KeySpec.RSA_2048,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            # Tokens live 5 minutes; the key is of no use without the stack that publishes it.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        self.signing_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheVendingFunctionSigns",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["kms:Sign"],
                resources=["*"],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": signer_role_arn}},
            )
        )
        acknowledge(
            self.signing_key,
            "AwsSolutions-KMS5",
            reason="KMS cannot rotate asymmetric keys automatically; the README describes rotation by "
            "publishing a new key next to the old one in the JWKS.",
        )

        # The native resource (no custom-resource Lambda). No thumbprint: IAM trusts the
        # issuer's certificate through its own CA library for execute-api hosts.
        self.provider = iam.CfnOIDCProvider(
            self,
            "Provider",
            url=url,
            client_id_list=[STS_AUDIENCE],
        )
        self.provider_arn = self.provider.attr_arn
        # The issuer as IAM registered it: the provider ARN ends in the URL without its scheme,
        # which is also the prefix of the trust policies' `:aud`/`:sub` keys. Taking the issuer
        # (the function's setting, hence every token's `iss`) and those keys from that one value
        # keeps the three identical by construction, whatever the URL's parts resolve to.
        self.issuer = "https://" + Fn.select(1, Fn.split(":oidc-provider/", self.provider_arn))

        well_known = api.root.add_resource(".well-known")
        self.methods: list[apigw.Method] = []
        for path in (DISCOVERY_PATH, JWKS_PATH):
            resource = well_known.add_resource(path.rsplit("/", 1)[1])
            method = resource.add_method("GET", integration, authorization_type=apigw.AuthorizationType.NONE)
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                reason="OIDC discovery must be public: STS fetches the issuer's discovery document and JWKS "
                "anonymously to verify credvend's tokens; they hold only the public key.",
            )
            acknowledge(
                method,
                "AwsSolutions-COG4",
                reason="A public OIDC discovery document; no user pool can authorize STS's anonymous fetch.",
            )
            acknowledge_checkov(
                method,
                "CKV_AWS_59",
                reason="OIDC discovery (CONTRACT §9) must be public: STS fetches the discovery document and "
                "JWKS anonymously; they hold only the public key.",
            )
            self.methods.append(method)

    @property
    def condition_prefix(self) -> str:
        """``<host/path>``, the prefix of the trust policies' ``:aud``/``:sub`` keys."""
        return issuer_host_path(self.issuer)

    def grant_signing(self, grantee: iam.IRole, *, function_arn: str) -> iam.Policy:
        """``kms:Sign`` and ``kms:GetPublicKey`` on this key only, from inside the function only."""
        return iam.Policy(
            self,
            "SigningPermissions",
            roles=[grantee],
            statements=[
                iam.PolicyStatement(
                    sid="SignWebIdentityTokens",
                    actions=["kms:Sign", "kms:GetPublicKey"],
                    resources=[self.signing_key.key_arn],
                    conditions={"ArnEquals": {"lambda:SourceFunctionArn": function_arn}},
                )
            ],
        )
