"""Vended credentials and the wire formats they travel in.

The service answers in three formats (CONTRACT §2); the SDKs read two of them verbatim:
``credential_process`` (``Version``/``SessionToken``) and ``container`` (``Token``). Parsing
is strict: an answer without the four fields is an upstream error, not a crash, and the
secret values never appear in a repr or an error message.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from credvend_client.errors import UpstreamError

EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def parse_expiration(unverified: object) -> datetime:
    """RFC 3339 time from the service, as an aware UTC datetime."""
    if not isinstance(unverified, str):
        raise UpstreamError("InvalidResponse", "Expiration is missing or not a string")
    try:
        moment = datetime.fromisoformat(unverified)
    except ValueError:
        raise UpstreamError("InvalidResponse", "Expiration is not an RFC 3339 time") from None
    if moment.tzinfo is None:  # STS always says Z; a naive time is read as UTC, never as local
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_expiration(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(EXPIRATION_FORMAT)


def _required_str(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise UpstreamError("InvalidResponse", f"the answer has no {key}")
    return value


def _optional_str(document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class VendedCredentials:
    """One set of temporary credentials. ``repr`` shows no secret."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    account_id: str | None = None
    role_arn: str | None = None

    @property
    def expires_at(self) -> float:
        """Expiration as POSIX seconds, comparable with ``time.time()``."""
        return self.expiration.timestamp()

    @classmethod
    def from_container(cls, unverified: object) -> VendedCredentials:
        """Read the service's ``format=container`` answer."""
        if not isinstance(unverified, dict):
            raise UpstreamError("InvalidResponse", "the answer is not a JSON object")
        return cls(
            access_key_id=_required_str(unverified, "AccessKeyId"),
            secret_access_key=_required_str(unverified, "SecretAccessKey"),
            session_token=_required_str(unverified, "Token"),
            expiration=parse_expiration(unverified.get("Expiration")),
            account_id=_optional_str(unverified, "AccountId"),
            role_arn=_optional_str(unverified, "RoleArn"),
        )

    @classmethod
    def from_envelope(cls, unverified: object) -> VendedCredentials:
        """Read the service's ``format=json`` envelope (STS's own ``Credentials`` shape)."""
        if not isinstance(unverified, dict) or not isinstance(unverified.get("Credentials"), dict):
            raise UpstreamError("InvalidResponse", "the answer has no Credentials object")
        creds: dict[str, Any] = unverified["Credentials"]
        grant = unverified.get("Grant")
        role_arn = _optional_str(grant, "RoleArn") if isinstance(grant, dict) else None
        return cls(
            access_key_id=_required_str(creds, "AccessKeyId"),
            secret_access_key=_required_str(creds, "SecretAccessKey"),
            session_token=_required_str(creds, "SessionToken"),
            expiration=parse_expiration(creds.get("Expiration")),
            account_id=_account_from_arn(role_arn),
            role_arn=role_arn,
        )

    def container_document(self) -> dict[str, str]:
        """What the SDKs' container credentials provider reads (FACTS: AccountId optional)."""
        document = {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.session_token,
            "Expiration": format_expiration(self.expiration),
        }
        if self.account_id:
            document["AccountId"] = self.account_id
        if self.role_arn:
            document["RoleArn"] = self.role_arn
        return document

    def env_exports(self) -> str:
        """``export`` lines for ``eval "$(credvend get ROLE --format env)"``."""
        variables = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_CREDENTIAL_EXPIRATION": format_expiration(self.expiration),
        }
        return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())


def _account_from_arn(arn: str | None) -> str | None:
    parts = arn.split(":") if arn else []
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


def checked_credential_process(unverified: object) -> dict[str, Any]:
    """The service's ``format=credential_process`` answer, checked before the SDK sees it.

    A program that prints a malformed document makes botocore fail with a confusing
    message far from the cause; failing here names the cause.
    """
    if not isinstance(unverified, dict) or unverified.get("Version") != 1:
        raise UpstreamError("InvalidResponse", "the answer is not a credential_process document (Version 1)")
    for key in ("AccessKeyId", "SecretAccessKey", "SessionToken"):
        _required_str(unverified, key)
    parse_expiration(unverified.get("Expiration"))  # without it botocore never refreshes
    return unverified
