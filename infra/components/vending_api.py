"""The REST API in front of the function: SigV4 (AWS_IAM) on every method but the OIDC
routes, which carry their own proof (a bearer token the function verifies, CONTRACT §10)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, cast

import jsii
from aws_cdk import IStableAnyProducer, Lazy, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from credvend_policy.api_policy import IAM_ROUTES, OIDC_ROUTES, Route, api_resource_policy, route_resource
from infra.nag import acknowledge, acknowledge_checkov

STAGE_NAME = "v1"
# OIDC_ROUTES (credvend_policy.api_policy): token-authenticated, no IAM auth at the gateway.
# The unauthenticated routes get at most this share of the stage's rate and burst, so
# anonymous traffic (every request reaches the function) cannot starve the SigV4 callers.
OIDC_THROTTLE_SHARE = 0.5

# One JSON line per request. The caller's identity as API Gateway verified it is what an
# operator searches by; no body, header or query string is logged (no credentials ever).
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "path": "$context.path",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "sourceIp": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "userArn": "$context.identity.userArn",
        "accountId": "$context.identity.accountId",
        "caller": "$context.identity.caller",
        "integrationStatus": "$context.integration.status",
        "integrationLatency": "$context.integration.latency",
        "errorType": "$context.error.responseType",
        "errorMessage": "$context.error.message",
    },
    separators=(",", ":"),
)


# CONTRACT §12: API Gateway's own answers (bad signature, throttling, validation...) in the
# function's error shape (§2), so a client reads one shape whoever answered. Status None
# keeps the status API Gateway chose (DEFAULT_4XX/5XX cover many).
GATEWAY_RESPONSES: tuple[tuple[apigw.ResponseType, str | None, str], ...] = (
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "401", "Unauthenticated"),  # unsigned, or an unknown path
    (apigw.ResponseType.INVALID_SIGNATURE, "401", "Unauthenticated"),
    (apigw.ResponseType.EXPIRED_TOKEN, "401", "Unauthenticated"),
    (apigw.ResponseType.UNAUTHORIZED, "401", "Unauthenticated"),
    (apigw.ResponseType.ACCESS_DENIED, "403", "AccessDenied"),  # the resource policy
    (apigw.ResponseType.THROTTLED, "429", "Throttled"),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429", "Throttled"),
    (apigw.ResponseType.BAD_REQUEST_BODY, "400", "InvalidRequest"),
    (apigw.ResponseType.BAD_REQUEST_PARAMETERS, "400", "InvalidRequest"),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "PayloadTooLarge"),
    (apigw.ResponseType.DEFAULT_4_XX, None, "InvalidRequest"),
    (apigw.ResponseType.DEFAULT_5_XX, None, "InternalError"),
)
THROTTLED_CODE = "Throttled"
RETRY_AFTER_SECONDS = 1  # what the function says for STS throttling too


def gateway_error_template(code: str) -> str:
    """The §2 error body as a gateway response template. ``messageString`` is API Gateway's
    message already quoted and escaped as a JSON string (e.g. a signature mismatch's hint)."""
    return '{"Error":{"Code":"' + code + '","Message":$context.error.messageString},"RequestId":"$context.requestId"}'


def add_gateway_responses(api: apigw.RestApi) -> None:
    for response_type, status, code in GATEWAY_RESPONSES:
        headers = {"Content-Type": "'application/json'"}
        if code == THROTTLED_CODE:
            headers["Retry-After"] = f"'{RETRY_AFTER_SECONDS}'"
        api.add_gateway_response(
            f"Gateway{response_type.response_type}",
            type=response_type,
            status_code=status,
            response_headers=headers,
            templates={"application/json": gateway_error_template(code)},
        )


def invoke_policy(
    caller_principal_arns: Sequence[str],
    *,
    iam_routes: Sequence[Route] = IAM_ROUTES,
    public_routes: Sequence[Route] = (),
    organization_id: str | None = None,
) -> dict[str, Any] | None:
    """The API's resource policy (credvend_policy.api_policy): admits the callers' ACCOUNTS
    (or organization) on the IAM routes, denies everyone else there, and lets anyone call
    the public routes. Its size does not grow with the number of callers.

    Account roots as principals delegate to each account's IAM policies: every caller also
    needs execute-api:Invoke in its own identity policy (docs/deploy.md). They also mean a
    caller role that does not exist yet cannot make the deployment fail.
    """
    return api_resource_policy(
        caller_principal_arns, iam_routes=iam_routes, public_routes=public_routes, organization_id=organization_id
    )


@jsii.implements(IStableAnyProducer)
class _Produce:
    """A value computed at synth time, when every route has been added."""

    def __init__(self, produce: Callable[[], Any]) -> None:
        self._produce = produce

    def produce(self) -> Any:
        return self._produce()


class VendingApi(Construct):
    """``POST /credentials`` and ``GET /credentials/{role}``, both proxied to ``handler``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        api_name: str,
        throttle_rate_limit: float,
        throttle_burst_limit: int,
        log_retention: logs.RetentionDays,
        create_cloudwatch_role: bool,
        caller_principal_arns: Sequence[str] = (),
        public_routes: Sequence[Route] = (),
        organization_id: str | None = None,
        tracing: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self._caller_principal_arns = list(caller_principal_arns)
        self._organization_id = organization_id
        self.public_routes: list[Route] = []
        for method, path in public_routes:
            self.add_public_route(method, path)

        self.access_log_group = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )

        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=api_name,
            description="credvend: short-lived AWS credentials for callers named in the policy file",
            # Service-to-service traffic from the same Region: no CloudFront in front.
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Logging needs API Gateway's ONE CloudWatch role per account and Region (the
            # account setting). Owning it is the `api_cloudwatch_role` choice; the role and
            # the setting are retained on destroy either way: deleting them would silently
            # stop execution logging for every other API in the account and Region.
            cloud_watch_role=create_cloudwatch_role,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN if create_cloudwatch_role else None,
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=throttle_rate_limit,
                throttling_burst_limit=throttle_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
                # ERROR: execution logs for failures only. Never data tracing: it would
                # write full responses, i.e. credentials, to CloudWatch.
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=tracing,
                method_options={
                    f"{path}/{method}": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=throttle_rate_limit * OIDC_THROTTLE_SHARE,
                        throttling_burst_limit=max(1, int(throttle_burst_limit * OIDC_THROTTLE_SHARE)),
                        # method_options replace the stage's settings for the method: keep them
                        logging_level=apigw.MethodLoggingLevel.ERROR,
                        data_trace_enabled=False,
                        metrics_enabled=True,
                    )
                    for method, path in OIDC_ROUTES
                },
            ),
        )

        # RestApi adds its own "Endpoint" output; the stack's ApiUrl is the one documented.
        self.api.node.try_remove_child("Endpoint")
        add_gateway_responses(self.api)

        # The resource policy is computed at synth, from the routes as they are then: a
        # route added later (public or IAM) is covered without anyone re-building it. The
        # deployment's logical id hashes the RestApi's properties, so a policy change
        # redeploys the stage (API Gateway applies a resource policy only on deployment).
        cfn_api = cast(apigw.CfnRestApi, self.api.node.default_child)
        cfn_api.policy = Lazy.any(_Produce(self.resource_policy))

        # API Gateway writes execution logs to a group it names and creates on first use,
        # with no expiry. Created here first, with bounded retention; the stage waits for it
        # so API Gateway never races the stack to create it.
        self.execution_log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{self.api.rest_api_id}/{STAGE_NAME}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.api.deployment_stage.node.add_dependency(self.execution_log_group)

        # Parameters only: a body validator would answer malformed bodies with API
        # Gateway's own message, while the contract promises the function's error codes.
        validator = self.api.add_request_validator(
            "ParameterValidator", validate_request_parameters=True, validate_request_body=False
        )
        # No test-invoke permission: only the deployed stage may invoke the function.
        integration = self.integration = apigw.LambdaIntegration(handler, proxy=True, allow_test_invoke=False)

        _add_vend_methods(
            self.api.root.add_resource("credentials"),
            integration,
            validator,
            authorization_type=apigw.AuthorizationType.IAM,
        )
        # The OIDC routes: no IAM auth (a workload without AWS credentials calls them); the
        # function verifies the bearer token before anything else (credvend/oidc/).
        self.oidc_methods = _add_vend_methods(
            self.api.root.add_resource("oidc").add_resource("credentials"),
            integration,
            validator,
            authorization_type=apigw.AuthorizationType.NONE,
        )
        for method, path in OIDC_ROUTES:
            self.add_public_route(method, path)
        for method in self.oidc_methods:
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                reason="OIDC caller route: the function verifies the caller's bearer token (signature by the issuer's "
                "JWKS, iss, aud, exp) before anything else, and the route is throttled below the stage.",
            )
            acknowledge(
                method,
                "AwsSolutions-COG4",
                reason="Callers are workloads with an OIDC token from an issuer in the policy file "
                "(GitHub Actions, Kubernetes...), verified by the function, not Cognito users.",
            )

        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            reason="Parameters are validated here, bodies by the function, so malformed bodies get the contract's "
            "JSON error codes instead of API Gateway's generic message.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            reason="Every method but the throttled OIDC routes requires a SigV4 signature, so unsigned traffic is "
            "refused before the function runs; attach a WAF web ACL if your estate requires one.",
        )
        for method in self.api.methods:
            if method in self.oidc_methods:
                continue
            acknowledge(
                method,
                "AwsSolutions-COG4",
                reason="Callers are AWS workloads that authenticate with SigV4 (AWS_IAM authorization), "
                "not Cognito users.",
            )
        self._acknowledge_checkov_findings(tracing=tracing)
        if create_cloudwatch_role:
            acknowledge(
                self.api.node.find_child("CloudWatchRole"),
                "AwsSolutions-IAM4",
                finding="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
                reason="API Gateway's account-wide logging role needs exactly this AWS-maintained policy.",
            )

    def _acknowledge_checkov_findings(self, *, tracing: bool) -> None:
        """checkov's generic API Gateway checks that do not fit a credential broker, each with why."""
        stage = self.api.deployment_stage
        acknowledge_checkov(
            stage,
            "CKV_AWS_120",
            reason="Every response of this API is a fresh, per-caller credential or decision: caching it "
            "would hand one caller's credentials to the next request, so the stage cache stays off.",
        )
        if not tracing:
            acknowledge_checkov(
                stage,
                "CKV_AWS_73",
                reason="X-Ray tracing is the context setting `tracing` (stage and function together), off by "
                "default: the access log and the decision log already carry every request id.",
            )
        for log_group in (self.access_log_group, self.execution_log_group):
            acknowledge_checkov(
                log_group,
                "CKV_AWS_158",
                reason="API Gateway's access and ERROR-level execution logs hold no secret (no body, header "
                "or query string; data tracing is off); CloudWatch Logs encrypts them with AWS owned keys.",
            )
        for method in self.oidc_methods:
            acknowledge_checkov(
                method,
                "CKV_AWS_59",
                reason="OIDC caller route (CONTRACT §10): callers have no AWS credentials; the function "
                "verifies the bearer token (JWKS signature, iss, aud, exp) first, and the route is throttled.",
            )

    @property
    def url(self) -> str:
        return self.api.url

    def add_public_route(self, method: str, path: str) -> None:
        """Let anyone invoke ``method path`` (e.g. ``("GET", "/.well-known/jwks.json")``):
        the resource policy allows it anonymously and its Deny leaves it alone. Declaring
        the method with ``AuthorizationType.NONE`` is the caller's part."""
        route = (method.upper(), path)
        if route not in self.public_routes:
            self.public_routes.append(route)

    @property
    def iam_routes(self) -> list[Route]:
        """Every (method, path) of the API that is not a public route."""
        routes = [(method.http_method.upper(), method.resource.path) for method in self.api.methods]
        public = {route_resource(route) for route in self.public_routes}
        return [route for route in routes if route[0] != "OPTIONS" and route_resource(route) not in public]

    def resource_policy(self) -> dict[str, Any] | None:
        return invoke_policy(
            self._caller_principal_arns,
            iam_routes=self.iam_routes,
            public_routes=self.public_routes,
            organization_id=self._organization_id,
        )


def _add_vend_methods(
    resource: apigw.Resource,
    integration: apigw.Integration,
    validator: apigw.IRequestValidator,
    *,
    authorization_type: apigw.AuthorizationType,
) -> list[apigw.Method]:
    """``POST <resource>`` and ``GET <resource>/{role}``: one pair of vend routes, the same for
    both ways to authenticate (CONTRACT §2, §10)."""
    return [
        resource.add_method("POST", integration, authorization_type=authorization_type, request_validator=validator),
        resource.add_resource("{role}").add_method(
            "GET",
            integration,
            authorization_type=authorization_type,
            request_validator=validator,
            request_parameters={
                "method.request.path.role": True,
                "method.request.querystring.duration_seconds": False,
                "method.request.querystring.format": False,
                "method.request.querystring.dry_run": False,
            },
        ),
    ]
