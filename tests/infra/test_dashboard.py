"""The operations dashboard and alarms (CONTRACT §12): they watch what the function emits."""

from __future__ import annotations

import json
from typing import Any

from credvend import metric_names
from credvend.domain.clamp import LimitedBy
from tests.infra.synthesis import Synth


def _function_env(synth: Synth) -> dict[str, str]:
    function_id = synth.logical_id(synth.stack.vending.function)
    env: dict[str, str] = synth.resources[function_id]["Properties"]["Environment"]["Variables"]
    return env


def _dashboard_body(synth: Synth) -> dict[str, Any]:
    [dashboard] = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    # CDK writes the body as Fn::Join of text and tokens (region, function name...): render
    # the tokens as placeholders to read the JSON.
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(part if isinstance(part, str) else "TOKEN" for part in parts)
    document: dict[str, Any] = json.loads(text)
    return document


def _function_metrics(synth: Synth) -> list[list[Any]]:
    """Every metric line of the dashboard in the function's namespace: [ns, name, dims...]."""
    namespace = _function_env(synth)["POWERTOOLS_METRICS_NAMESPACE"]
    lines = []
    for widget in _dashboard_body(synth)["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if line[0] == namespace:
                lines.append(line)
    return lines


def test_the_dashboard_charts_every_outcome_the_function_counts(agnostic: Synth) -> None:
    names = {line[1] for line in _function_metrics(agnostic)}
    assert {
        metric_names.VENDS,
        metric_names.DRY_RUNS,
        metric_names.DENIALS,
        metric_names.INVALID_REQUESTS,
        metric_names.ERRORS,
        metric_names.THROTTLES,
        metric_names.STS_LATENCY,
        metric_names.CLAMPS,
    } <= names
    assert names <= set(metric_names.ALL), "a chart of a metric the function never sends"


def test_function_metrics_carry_the_dimensions_the_function_sends(agnostic: Synth) -> None:
    service = _function_env(agnostic)["POWERTOOLS_SERVICE_NAME"]
    reasons = set()
    for line in _function_metrics(agnostic):
        name, rest = line[1], line[2:]
        dims = rest[:-1] if rest and isinstance(rest[-1], dict) else rest
        pairs = dict(zip(dims[::2], dims[1::2], strict=True))
        if name == metric_names.CLAMPS:
            assert set(pairs) == {metric_names.SERVICE_DIMENSION, metric_names.CLAMP_REASON_DIMENSION}
            reasons.add(pairs[metric_names.CLAMP_REASON_DIMENSION])
        else:
            assert pairs == {metric_names.SERVICE_DIMENSION: service}, name
    assert reasons == {str(reason) for reason in LimitedBy}  # clamps by every reason


def test_sts_latency_is_charted_at_p50_and_p99(agnostic: Synth) -> None:
    stats = {
        line[-1].get("stat")
        for line in _function_metrics(agnostic)
        if line[1] == metric_names.STS_LATENCY and isinstance(line[-1], dict)
    }
    assert stats == {"p50", "p99"}


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["MetricName"]: alarm["Properties"]
        for alarm in synth.of_type("AWS::CloudWatch::Alarm").values()
        if "MetricName" in alarm["Properties"]
    }


def test_alarms_on_errors_and_throttling(agnostic: Synth) -> None:
    alarms = _alarms(agnostic)
    env = _function_env(agnostic)
    for name in (metric_names.ERRORS, metric_names.THROTTLES):
        alarm = alarms[name]
        assert alarm["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
        assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
        assert alarm["Statistic"] == "Sum"
        assert alarm["Period"] == 300
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["Threshold"] >= 1
        # no traffic is not an incident
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmDescription"]


def test_the_handler_emits_exactly_these_names() -> None:
    """The handler reads its metric names from credvend/metric_names.py, nowhere else."""
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "lambda_src/credvend/handler.py").read_text()
    for literal in ("Vends", "Denials", "InvalidRequests", "Errors", "Throttles", "StsLatency", "Clamps", "DryRuns"):
        assert f'"{literal}"' not in source, f"metric name {literal} written out in the handler"
