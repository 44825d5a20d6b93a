#!/usr/bin/env python3
"""The credvend CDK app: ``cdk synth`` / ``cdk deploy`` build everything from the policy file.

Context (``-c key=value`` or cdk.json): policy, stack_name, architecture,
reserved_concurrency, log_retention_days, throttle_rate_limit, throttle_burst_limit,
api_cloudwatch_role, tracing, organization_id, trust_policy_quota,
managed_policies_per_role. See docs/deploy.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The policy library lives with the function's code (it is bundled with it); the CDK app
# imports it from there. The function never imports CDK.
sys.path.insert(0, str(Path(__file__).resolve().parent / "lambda_src"))

from aws_cdk import App

from credvend_policy import PolicyError
from infra.assembly import build_app
from infra.config import ConfigError


def main() -> int:
    app = App()
    try:
        build_app(app)
    except (PolicyError, ConfigError) as exc:
        print(f"credvend: cannot synthesize: {exc}", file=sys.stderr)
        return 1
    try:
        app.synth()
    except RuntimeError as exc:  # jsii's error for a failed validation plugin (cdk-nag, AWS quotas)
        if "ValidationFailed" not in str(exc):
            raise
        print("credvend: cannot synthesize: the validation report above says what failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
