"""CloudFormation's template quotas, so a stack AWS would not accept is not accepted locally.

Pure: `check_template` takes the template text and how it was passed; the LocalStack hook
(quota_rules.py) calls it for CreateStack, UpdateStack and CreateChangeSet (what `cdk deploy`
uses). AWS validates these before it creates anything: the deploy fails at once with a
ValidationError (400).

| quota | AWS's message |
| --- | --- |
| 500 resources | "Template format error: Number of resources, N, is greater than maximum allowed, 500" |
| 200 outputs | "Template format error: Number of outputs, N, is greater than maximum allowed, 200" |
| 51,200 bytes in TemplateBody | "Templates with a size greater than 51,200 bytes must be deployed via an S3 Bucket" |
| 1 MB via TemplateURL | "Template may not exceed 1048576 bytes in size." |
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .iam_policy_eval import Refusal

MAX_RESOURCES = 500
MAX_OUTPUTS = 200
MAX_BODY_BYTES = 51_200
MAX_URL_BYTES = 1_048_576


def _validation(message: str) -> Refusal:
    return Refusal("ValidationError", message, 400)


def parse_template(text: str) -> Mapping[str, Any] | None:
    """The template as a mapping, or None when it is not JSON (YAML templates with
    intrinsic-function tags are left to CloudFormation's own parser: not counted)."""
    try:
        template = json.loads(text)
    except ValueError:
        return None
    return template if isinstance(template, Mapping) else None


def check_template(text: str, *, via_url: bool) -> Refusal | None:
    size = len(text.encode())
    if via_url and size > MAX_URL_BYTES:
        return _validation(f"Template may not exceed {MAX_URL_BYTES} bytes in size.")
    if not via_url and size > MAX_BODY_BYTES:
        return _validation("Templates with a size greater than 51,200 bytes must be deployed via an S3 Bucket")
    template = parse_template(text)
    if template is None:
        return None
    for section, limit in (("Resources", MAX_RESOURCES), ("Outputs", MAX_OUTPUTS)):
        count = len(template.get(section) or {})
        if count > limit:
            return _validation(
                f"Template format error: Number of {section.lower()}, {count}, is greater than maximum allowed, {limit}"
            )
    return None
