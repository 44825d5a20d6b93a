"""Settings, parsed once and lazily from the environment (never at import time).

The function needs only the standard AWS variables; everything here has a default.
Powertools reads its own variables (``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_LOG_LEVEL``,
``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_TRACE_DISABLED``...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# The code root: the directory that holds the credvend package (/var/task on Lambda).
CODE_ROOT = Path(__file__).resolve().parent.parent
# In the asset the bundler puts policy.yaml at the code root, next to the packages, and
# beside it policy.json: the same document as JSON (checked at build time to say exactly
# what the YAML says), which the function reads so a cold start needs no YAML parser.
BUNDLED_POLICY_FILE = CODE_ROOT / "policy.json"
DEFAULT_SERVICE_NAME = "credvend"
DEFAULT_METRICS_NAMESPACE = "credvend"
_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class Settings:
    policy_file: Path
    service_name: str
    metrics_namespace: str
    in_lambda: bool
    trace_disabled: bool
    # CONTRACT §9: credvend as an OIDC issuer. Both set by the stack; without them a
    # web_identity vend is an InternalError (assume_role vends are unaffected).
    issuer: str | None = None
    signing_key: str | None = None
    # Keys the JWKS lists besides the signing key, during a rotation (README: rotating the key).
    published_keys: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            # A relative path is relative to the code root, whatever the working directory.
            policy_file=CODE_ROOT / (env.get("CREDVEND_POLICY_FILE") or BUNDLED_POLICY_FILE),
            service_name=env.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE_NAME,
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE,
            in_lambda=bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and not env.get("AWS_SAM_LOCAL"),
            trace_disabled=env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in _TRUE,
            issuer=(env.get("CREDVEND_ISSUER") or "").strip().rstrip("/") or None,
            signing_key=(env.get("CREDVEND_SIGNING_KEY") or "").strip() or None,
            published_keys=tuple(
                key for key in (part.strip() for part in env.get("CREDVEND_PUBLISHED_KEYS", "").split(",")) if key
            ),
        )
