"""The vending Lambda function, its execution role and its log group."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import Architecture
from infra.nag import acknowledge, acknowledge_checkov

HANDLER = "credvend.handler.handler"
RUNTIME = lambda_.Runtime.PYTHON_3_13
# The bundle has the policy at its root: policy.yaml as written, and policy.json, the same
# document as JSON (infra/bundling.py), which the function reads without a YAML parser.
# Relative on purpose: the function resolves it against its code root (/var/task on Lambda,
# elsewhere under the LocalStack host-process executor), whatever its working directory.
BUNDLED_POLICY_PATH = "policy.json"
# Cold starts import pydantic, boto3 and Powertools and validate the policy; Lambda
# gives CPU in proportion to memory, so 512 MB roughly halves that time against 256 MB for
# a fraction of a cent per thousand requests. Measured need is well under 128 MB of RAM.
MEMORY_MB = 512
# The time budget of one request, under API Gateway's 29 s integration timeout:
# - a healthy request: a cold start (well under 2 s) plus up to three STS calls of tens of
#   milliseconds each (GetCallerIdentity once per container, AssumeRole, and its one retry
#   after sts_rejected);
# - one STS call at worst: 2 attempts x (1 s connect + 2 s read) + backoff = 7 s
#   (credvend/adapters/sts.py), so three slow calls would outlast the timeout. The function
#   therefore keeps a deadline 1 s before the timeout (credvend/handler.py) and starts an
#   STS call only while 7 s remain before it; otherwise it answers 503 UpstreamUnavailable.
#   A slow STS thus always gets a JSON answer, never a Lambda timeout (a 502 from the gateway).
# 20 s leaves about 12 s for a cold start under load (a burst of new containers on busy
# hosts: 4.3 s was seen for 50 at once on 2 loaded cores) before the first STS call must
# start; below ~9 s a slow cold start would turn into 503s. Beyond that, a longer timeout
# only lets a slow STS take longer to answer, and it stays under API Gateway's 29 s.
TIMEOUT = Duration.seconds(20)

_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


class VendingFunction(Construct):
    """The function that authorizes callers and assumes roles; STS grants are the stack's to add."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        role_name: str,
        architecture: Architecture,
        log_retention: logs.RetentionDays,
        reserved_concurrency: int | None = None,
        tracing: bool = False,
        service_name: str = "credvend",
    ) -> None:
        super().__init__(scope, construct_id)
        self.service_name = service_name  # Powertools service and metrics namespace

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention,
            # The decision log: who got which role, for how long, and why (one line per
            # request, kept a year by default). CloudTrail's free history keeps 90 days, so
            # this record outlives the stack: destroy leaves it to expire by its retention.
            removal_policy=RemovalPolicy.RETAIN,
        )

        # No AWSLambdaBasicExecutionRole: that managed policy may create log groups and
        # write to any of them. The stack adds the role's permissions (its own log group
        # and the policy's roles), each tied to this function by lambda:SourceFunctionArn,
        # which an inline policy here could not name without a dependency cycle.
        self.role = iam.Role(
            self,
            "ExecutionRole",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="credvend vending function: assumes exactly the roles in the policy file",
        )

        self.function = lambda_.Function(
            self,
            "Function",
            description="credvend: vends short-lived role credentials to callers named in the policy file",
            runtime=RUNTIME,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(code_dir)),
            architecture=_ARCHITECTURES[architecture],
            memory_size=MEMORY_MB,
            timeout=TIMEOUT,
            role=self.role,
            log_group=self.log_group,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
            environment={
                "CREDVEND_POLICY_FILE": BUNDLED_POLICY_PATH,
                # The regional STS endpoint, whatever the runtime's botocore defaults to
                # (older ones used the global endpoint in us-east-1).
                "AWS_STS_REGIONAL_ENDPOINTS": "regional",
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": service_name,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                # Never log events or responses: they carry signatures and credentials.
                "POWERTOOLS_LOGGER_LOG_EVENT": "false",
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
                # Without X-Ray the function skips loading the tracer at all.
                "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
            },
        )
        cfn_function = cast(lambda_.CfnFunction, self.function.node.default_child)
        if not tracing:
            # CDK adds DependsOn: [role] although Properties.Role's GetAtt already orders
            # them (cfn-lint W3005); with tracing, it also waits for X-Ray's permissions.
            cfn_function.add_deletion_override("DependsOn")
        if tracing:
            # Only X-Ray's permissions (the role's default policy): the role itself is already
            # ordered by Properties.Role's GetAtt (cfn-lint W3005).
            default_policy = self.role.node.find_child("DefaultPolicy").node.default_child
            assert isinstance(default_policy, CfnResource)
            cfn_function.add_override("DependsOn", [Stack.of(self).get_logical_id(default_policy)])
            # Lambda's X-Ray statement (added by CDK to the role's default policy).
            acknowledge(
                self.role.node.find_child("DefaultPolicy"),
                "AwsSolutions-IAM5",
                finding="Resource::*",
                reason="xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
            )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            reason="Python 3.13 is the runtime the function is built and tested for (CONTRACT §6), "
            "so moving to a newer one is a deliberate, tested change.",
        )
        _acknowledge_checkov_findings(self.function, self.log_group, reserved_concurrency=reserved_concurrency)


def _acknowledge_checkov_findings(
    function: lambda_.Function, log_group: logs.LogGroup, *, reserved_concurrency: int | None
) -> None:
    """checkov's generic Lambda checks that do not fit a synchronous STS broker, each with why."""
    acknowledge_checkov(
        function,
        "CKV_AWS_116",
        reason="API Gateway invokes the function synchronously; a dead-letter queue only receives "
        "failed asynchronous events, and a failed vend is answered to its caller.",
    )
    acknowledge_checkov(
        function,
        "CKV_AWS_117",
        reason="The function reaches only the regional STS and KMS endpoints and holds no network "
        "resource; a VPC would add NAT or interface endpoints and cold-start time, and no protection.",
    )
    acknowledge_checkov(
        function,
        "CKV_AWS_173",
        reason="The environment holds no secret (policy file path, issuer URL, key id, Powertools "
        "settings); Lambda encrypts it at rest with an AWS managed key.",
    )
    if reserved_concurrency is None:
        acknowledge_checkov(
            function,
            "CKV_AWS_115",
            reason="Concurrency is bounded by the API stage's throttling; reserving some is the context "
            "setting reserved_concurrency, off by default because accounts with a low concurrency "
            "quota cannot reserve any.",
        )
    acknowledge_checkov(
        log_group,
        "CKV_AWS_158",
        reason="The decision log holds no secret (credentials are never logged, tests prove it); "
        "CloudWatch Logs encrypts it at rest with AWS owned keys.",
    )
