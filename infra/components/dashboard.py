"""The operator's view (CONTRACT §12): one CloudWatch dashboard and the alarms that page.

Every function metric charted here is one the function emits, by the names in
``credvend/metric_names.py`` (the handler's source of them), in the namespace and with the
``service`` dimension the stack gives the function. Clamp reasons come from the domain's
``LimitedBy``. API Gateway's and Lambda's own metrics sit beside them: a 429 from the
stage's throttling or a Lambda throttle never reaches the function's metrics.

Alarms have no actions here: subscribe a topic in your estate (``dashboard.alarms``, or the
alarm names in the console) — paging policy is the operator's, not the service's.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from credvend import metric_names
from credvend.domain.clamp import LimitedBy

PERIOD = Duration.minutes(5)
# Errors: any 5xx answer is a failed vend a caller saw; a few in 5 minutes is an incident,
# one is worth a look but not a page.
ERRORS_THRESHOLD = 5
# Throttles: STS throttling is per account and not raisable; sustained 429s mean callers
# must cache (credvend serve) or the load must spread.
THROTTLES_THRESHOLD = 10
EVALUATION_PERIODS = 1


class OperationsDashboard(Construct):
    """Dashboard ``<stack>-operations`` and alarms on errors and throttling."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        namespace: str,
        service_name: str,
        function: lambda_.IFunction,
        api: apigw.RestApi,
    ) -> None:
        super().__init__(scope, construct_id)
        self.namespace = namespace
        self.service_name = service_name
        stack_name = Stack.of(self).stack_name

        outcomes = [
            self.metric(name, label=label)
            for name, label in (
                (metric_names.VENDS, "vends"),
                (metric_names.DRY_RUNS, "dry runs"),
                (metric_names.DENIALS, "denials (401/403)"),
                (metric_names.INVALID_REQUESTS, "invalid requests (4xx)"),
                (metric_names.THROTTLES, "throttled (429)"),
                (metric_names.ERRORS, "errors (5xx)"),
            )
        ]
        # no labels on alarm metrics: CloudFormation then gets the plain MetricName form
        errors = self.metric(metric_names.ERRORS)
        throttles = self.metric(metric_names.THROTTLES)
        clamps = [self.metric(metric_names.CLAMPS, label=str(reason), reason=str(reason)) for reason in LimitedBy]
        latency = [
            self.metric(metric_names.STS_LATENCY, statistic=statistic, label=f"AssumeRole {statistic}")
            for statistic in ("p50", "p99")
        ]

        self.errors_alarm = errors.create_alarm(
            self,
            "ErrorsAlarm",
            alarm_name=f"{stack_name}-errors",
            alarm_description=f"credvend answered {ERRORS_THRESHOLD} or more 5xx in 5 minutes "
            "(STS failed or timed out, or the function failed): callers got no credentials.",
            threshold=ERRORS_THRESHOLD,
            evaluation_periods=EVALUATION_PERIODS,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.throttles_alarm = throttles.create_alarm(
            self,
            "ThrottlesAlarm",
            alarm_name=f"{stack_name}-throttles",
            alarm_description=f"STS throttled credvend {THROTTLES_THRESHOLD} or more times in 5 minutes "
            "(callers got 429 with Retry-After): callers should cache (credvend serve) or spread their load.",
            threshold=THROTTLES_THRESHOLD,
            evaluation_periods=EVALUATION_PERIODS,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms = (self.errors_alarm, self.throttles_alarm)

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{stack_name}-operations",
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Requests by outcome", left=outcomes, width=12, stacked=True),
            cloudwatch.GraphWidget(title="Clamps by reason (LimitedBy of vends)", left=clamps, width=12, stacked=True),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmWidget(title="Errors (5xx)", alarm=self.errors_alarm, width=8),
            cloudwatch.AlarmWidget(title="Throttles (429)", alarm=self.throttles_alarm, width=8),
            cloudwatch.GraphWidget(title="STS AssumeRole latency (ms)", left=latency, width=8),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API Gateway",
                left=[
                    api.metric_count(period=PERIOD, label="requests"),
                    api.metric_client_error(period=PERIOD, label="4XX (incl. stage throttling)"),
                    api.metric_server_error(period=PERIOD, label="5XX"),
                ],
                right=[api.metric_latency(period=PERIOD, statistic="p99", label="latency p99 (ms)")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda",
                left=[
                    function.metric_invocations(period=PERIOD),
                    function.metric_errors(period=PERIOD, label="errors (unhandled)"),
                    function.metric_throttles(period=PERIOD, label="throttles (concurrency)"),
                ],
                right=[function.metric_duration(period=PERIOD, statistic="p99", label="duration p99 (ms)")],
                width=12,
            ),
        )

    def metric(
        self, name: str, *, label: str | None = None, statistic: str = "Sum", reason: str | None = None
    ) -> cloudwatch.Metric:
        """A function metric, with exactly the dimensions the function sends it with."""
        dimensions = {metric_names.SERVICE_DIMENSION: self.service_name}
        if reason is not None:
            dimensions[metric_names.CLAMP_REASON_DIMENSION] = reason
        return cloudwatch.Metric(
            namespace=self.namespace,
            metric_name=name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=PERIOD,
            label=label,
        )
