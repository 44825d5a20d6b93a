#!/usr/bin/env python3
"""The credvend CDK app: ``cdk synth`` / ``cdk deploy`` build everything from the policy file.

Context (``-c key=value`` or cdk.json): policy, stack_name, architecture,
reserved_concurrency, log_retention_days, throttle_rate_limit, throttle_burst_limit,
api_cloudwatch_role, tracing. See docs/deploy.md.
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
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
