"""The two request shapes (body and path+query) as one typed, untrusted-input model."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from credvend.domain.errors import InvalidDuration, InvalidRequest, PayloadTooLarge
from credvend.domain.formats import Format
from credvend_policy import STS_MAX_DURATION

MAX_BODY_BYTES = 8 * 1024
_QUERY_FIELDS = frozenset({"duration_seconds", "format", "dry_run"})
# ``dry_run`` in a query string: the JSON literals, nothing looser ("1", "yes", "True" are errors,
# so a typo never turns a dry run into a real vend or the other way round).
_QUERY_BOOLEANS = {"true": True, "false": False}
_NAMES_SHOWN = 3  # field names a message echoes back, each cut to _NAME_CHARS
_NAME_CHARS = 64


def _names(unverified_names: Iterable[str]) -> str:
    """Names from the request for an error message: a few, each cut short."""
    names = sorted(unverified_names)
    shown = ", ".join(name[:_NAME_CHARS] for name in names[:_NAMES_SHOWN])
    return shown + (f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else "")


class VendRequest(BaseModel):
    """What a caller asks for. Who the caller is never comes from here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    duration_seconds: Annotated[StrictInt, Field(ge=1, le=STS_MAX_DURATION)] | None = None
    format: Format = Format.JSON
    # CONTRACT §11: the grant a real request would get now, without issuing credentials.
    dry_run: StrictBool = False

    @field_validator("duration_seconds", mode="before")
    @classmethod
    def _explicit_null_is_not_a_duration(cls, value: object) -> object:
        # Omitted means "the policy's default"; an explicit null is not an integer.
        if value is None:
            raise ValueError("duration_seconds must be an integer")
        return value


def _validated(unverified: Mapping[str, Any]) -> VendRequest:
    try:
        return VendRequest.model_validate(unverified)
    except ValidationError as exc:
        fields = {str(error["loc"][0]) if error["loc"] else "" for error in exc.errors()}
        if fields == {"duration_seconds"}:
            raise InvalidDuration() from None
        bad = _names(field or "<body>" for field in fields)
        raise InvalidRequest(f"The request is not valid: check {bad}.") from None


def validate_request(unverified: Mapping[str, Any]) -> VendRequest:
    """Fields from elsewhere (``credvend policy explain``), checked as a request's are."""
    return _validated(unverified)


def parse_body(unverified_body: str | None, *, is_base64: bool = False) -> VendRequest:
    """``POST /credentials``: the size limit first, then JSON, then the model."""
    raw = unverified_body or ""
    if len(raw) > MAX_BODY_BYTES * 2:  # cheap guard before decoding anything large
        raise PayloadTooLarge()
    try:
        data = base64.b64decode(raw, validate=True) if is_base64 else raw.encode("utf-8")
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidRequest("The request body is not valid base64/UTF-8.") from None
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return _validated(document)


def parse_path_and_query(
    role: str,
    unverified_query: Mapping[str, str] | None,
    unverified_multi_query: Mapping[str, list[str]] | None = None,
) -> VendRequest:
    """``GET /credentials/{role}?duration_seconds=&format=&dry_run=``: query strings become typed fields."""
    query = dict(unverified_query or {})
    repeated = [name for name, values in (unverified_multi_query or {}).items() if len(values) > 1]
    if repeated:
        raise InvalidRequest(f"The request is not valid: {_names(repeated)} given more than once.")
    unknown = set(query) - _QUERY_FIELDS
    if unknown:
        raise InvalidRequest(f"The request is not valid: unknown query parameter(s) {_names(unknown)}.")
    fields: dict[str, Any] = {"role": role}
    if "format" in query:
        fields["format"] = query["format"]
    if "duration_seconds" in query:
        text = query["duration_seconds"]
        if not (text.isascii() and text.isdigit() and len(text) <= 5):
            raise InvalidDuration()
        fields["duration_seconds"] = int(text)
    if "dry_run" in query:
        dry_run = _QUERY_BOOLEANS.get(query["dry_run"])
        if dry_run is None:
            raise InvalidRequest("The request is not valid: dry_run must be true or false.")
        fields["dry_run"] = dry_run
    return _validated(fields)
