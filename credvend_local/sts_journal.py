"""What the vending function sent to STS, read from the LocalStack STS rules' journal.

The API's answer says what credvend *granted*; only STS's side shows what it *asked for*
and whether STS refused it. The test LocalStack's STS rules plugin journals every
AssumeRole and AssumeRoleWithWebIdentity decision (caller, role, duration, source identity,
outcome; never a secret) at
``GET /_credvend/sts/assume-role-journal`` — see credvend_local/plugin/credvend_localstack/journal.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

JOURNAL_PATH = "/_credvend/sts/assume-role-journal"


def role_name_of_session(caller_arn: str) -> str | None:
    """``arn:aws:sts::ACCT:assumed-role/NAME/SESSION`` -> NAME (None for other callers)."""
    resource = caller_arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if parts[0] == "assumed-role" and len(parts) == 3 else None


@dataclass(frozen=True)
class StsJournal:
    endpoint: str
    function_role_arn: str  # the FunctionRoleArn output
    # Sessions of the function's role that the tests themselves open (see
    # test_sts_rules_e2e.py) use this session name; everything else of that role is the function.
    probe_session_name: str = "credvend-e2e-probe"
    # The IAM OIDC provider ARN of the stack's issuer, when it has one: AssumeRoleWithWebIdentity
    # is unsigned, so its entries name the provider (caller_arn), and only the function can
    # mint tokens that provider accepts.
    issuer_provider_arn: str | None = None

    def _get(self, after: int) -> dict[str, Any]:
        response = requests.get(f"{self.endpoint}{JOURNAL_PATH}", params={"after": str(after)}, timeout=10)
        response.raise_for_status()
        snapshot: dict[str, Any] = response.json()
        # a bounded journal that dropped entries could hide a refusal from a window
        assert snapshot["dropped"] == 0, "the STS journal overflowed; raise its max_entries"
        return snapshot

    def mark(self) -> int:
        """A position: ``entries(after=mark)`` is what happened since."""
        return int(self._get(after=2**62)["last_seq"])

    def entries(self, after: int) -> list[dict[str, Any]]:
        return list(self._get(after)["entries"])

    def is_function(self, entry: dict[str, Any]) -> bool:
        """Sent by the function: a session of its execution role that a test did not open,
        or a web identity call with a token of the stack's issuer."""
        role_name = self.function_role_arn.rsplit("/", 1)[-1]
        caller = entry["caller_arn"]
        if entry.get("operation") == "AssumeRoleWithWebIdentity":
            return self.issuer_provider_arn is not None and caller == self.issuer_provider_arn
        return role_name_of_session(caller) == role_name and not caller.endswith(f"/{self.probe_session_name}")

    def function_calls(self, after: int) -> list[dict[str, Any]]:
        """The AssumeRole (and, with ``issuer_provider_arn``, AssumeRoleWithWebIdentity)
        calls the vending function made since ``after``."""
        return [entry for entry in self.entries(after) if self.is_function(entry)]

    @contextmanager
    def watch(self) -> Iterator[list[dict[str, Any]]]:
        """``with journal.watch() as sent:`` — after the block, ``sent`` holds the function's
        AssumeRole calls made inside it."""
        mark = self.mark()
        sent: list[dict[str, Any]] = []
        yield sent
        sent.extend(self.function_calls(after=mark))
