"""The CloudWatch metrics the function emits (Powertools EMF), named once.

The handler emits them and the stack's dashboard and alarms chart them
(infra/components/dashboard.py): both read these names, so a chart can never watch a metric
the function does not send. Pure constants: the CDK app imports this module too.

Namespace and the ``service`` dimension are ``POWERTOOLS_METRICS_NAMESPACE`` and
``POWERTOOLS_SERVICE_NAME`` (both ``credvend`` as the stack deploys the function).
"""

from __future__ import annotations

SERVICE_DIMENSION = "service"  # Powertools adds it to every metric

# Count, one per request, by outcome (the decision line's ``outcome``)
VENDS = "Vends"
DRY_RUNS = "DryRuns"
DENIALS = "Denials"  # 401 and 403
INVALID_REQUESTS = "InvalidRequests"  # other 4xx but 429
THROTTLES = "Throttles"  # 429: STS throttled the function
ERRORS = "Errors"  # 5xx
OUTCOME_METRICS = {"vended": VENDS, "dry_run": DRY_RUNS, "denied": DENIALS, "invalid": INVALID_REQUESTS}

# Milliseconds of the AssumeRole call that issued the credentials (the last one, after a retry)
STS_LATENCY = "StsLatency"

# Count, one per LimitedBy reason of a vend, with the Reason dimension (credvend.domain.clamp.LimitedBy)
CLAMPS = "Clamps"
CLAMP_REASON_DIMENSION = "Reason"

# Powertools' own, with the function_name dimension too
COLD_START = "ColdStart"

ALL = (VENDS, DRY_RUNS, DENIALS, INVALID_REQUESTS, THROTTLES, ERRORS, STS_LATENCY, CLAMPS, COLD_START)
