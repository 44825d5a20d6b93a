"""The three response formats of CONTRACT §2.

Secrets travel as ``SecretStr`` from the STS adapter to this module and are unwrapped
only here, in the dict that becomes the response body, so a stray ``repr``/log of a
domain object never shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import SecretStr

from credvend.domain.clamp import LimitedBy
from credvend_policy import account_of


class Format(StrEnum):
    JSON = "json"
    CREDENTIAL_PROCESS = "credential_process"
    CONTAINER = "container"


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: SecretStr
    session_token: SecretStr
    expiration: datetime

    def __repr__(self) -> str:  # slots dataclass repr would be fine too; be explicit anyway
        return f"Credentials(access_key_id={self.access_key_id!r}, expiration={self.expiration!r}, secrets=**********)"


@dataclass(frozen=True, slots=True)
class AssumedRole:
    """What STS returned for one AssumeRole."""

    credentials: Credentials
    assumed_role_arn: str
    assumed_role_id: str
    request_id: str | None = None  # STS's RequestId: CloudTrail's requestID for this issuance


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """The decision behind a vend: what was asked, what was given, and why."""

    caller: str
    role: str
    role_arn: str
    session_name: str
    source_identity: str
    requested: int
    granted: int
    limited_by: tuple[LimitedBy, ...]
    issuance: str = "assume_role"  # CONTRACT §9: "assume_role" | "web_identity"


@dataclass(frozen=True, slots=True)
class Vended:
    grant: GrantRecord
    assumed: AssumedRole


def rfc3339(moment: datetime) -> str:
    """``2026-11-23T16:35:57Z``: what STS, the CLI and every SDK parse."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # isoformat, not strftime: the same text in a third of the time (once per vend)
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def render(vended: Vended, fmt: Format, *, request_id: str) -> dict[str, Any]:
    """The response body for ``fmt``; the only place secrets are unwrapped."""
    creds = vended.assumed.credentials
    expiration = rfc3339(creds.expiration)
    if fmt is Format.CREDENTIAL_PROCESS:
        return {
            "Version": 1,
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key.get_secret_value(),
            "SessionToken": creds.session_token.get_secret_value(),
            "Expiration": expiration,
        }
    if fmt is Format.CONTAINER:
        return {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key.get_secret_value(),
            "Token": creds.session_token.get_secret_value(),
            "Expiration": expiration,
            "RoleArn": vended.grant.role_arn,
            "AccountId": account_of(vended.grant.role_arn),
        }
    return {
        "Credentials": {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key.get_secret_value(),
            "SessionToken": creds.session_token.get_secret_value(),
            "Expiration": expiration,
        },
        "AssumedRoleUser": {"Arn": vended.assumed.assumed_role_arn, "AssumedRoleId": vended.assumed.assumed_role_id},
        "Grant": grant_document(vended.grant),
        "RequestId": request_id,
    }


def grant_document(grant: GrantRecord) -> dict[str, Any]:
    """``Grant`` as every answer shows it: the json envelope, a dry run, ``credvend policy explain``."""
    return {
        "Caller": grant.caller,
        "Role": grant.role,
        "RoleArn": grant.role_arn,
        "RoleSessionName": grant.session_name,
        "SourceIdentity": grant.source_identity,
        "RequestedDurationSeconds": grant.requested,
        "GrantedDurationSeconds": grant.granted,
        "LimitedBy": [str(reason) for reason in grant.limited_by],
        "Issuance": grant.issuance,
    }


def render_dry_run(grant: GrantRecord, *, request_id: str) -> dict[str, Any]:
    """A dry run's answer (CONTRACT §11): the grant, and no ``Credentials`` key at all, whatever
    the requested format (a dry run has no credentials to put in one)."""
    return {"DryRun": True, "Grant": grant_document(grant), "RequestId": request_id}
