"""The two request shapes (body and path+query) as one typed, untrusted-input model."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from itertools import chain
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


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``{"role": "a", "role": "b"}`` is refused: "the last one wins" would let two readers
    of one body (a proxy, a WAF rule, this function) disagree on what was asked."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _DuplicateKey
    return document


class _OversizedInt:
    """A JSON integer too long for ``int()`` (Python refuses over 4300 digits): kept as a value
    that no field accepts, so ``duration_seconds`` with 5000 digits is an InvalidDuration."""

    __slots__ = ()


_INT_DIGITS_LIMIT = 64  # far beyond any valid field; a longer integer is never converted


def _json_int(text: str) -> int | _OversizedInt:
    return int(text) if len(text) <= _INT_DIGITS_LIMIT else _OversizedInt()


# One decoder for every request: json.loads() with hooks would build a new one per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_object_without_duplicates, parse_int=_json_int)


def validate_request(unverified: Mapping[str, Any]) -> VendRequest:
    """Fields from elsewhere (``credvend policy explain``), checked as a request's are."""
    return _validated(unverified)


def parse_body(unverified_body: str | None, *, is_base64: bool = False) -> VendRequest:
    """``POST /credentials``: the size limit first, then JSON, then the model."""
    raw = unverified_body or ""
    if not isinstance(raw, str):
        raise InvalidRequest("The request body is not text.")
    if len(raw) > MAX_BODY_BYTES * 2:  # cheap guard before decoding anything large
        raise PayloadTooLarge()
    try:
        # b64decode raises a plain ValueError (not binascii.Error) for a str with non-ASCII.
        data = base64.b64decode(raw, validate=True) if is_base64 else raw.encode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeEncodeError (lone surrogates) is a ValueError too
        raise InvalidRequest("The request body is not valid base64/UTF-8.") from None
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    try:
        # What json.loads does with bytes (UTF-8, or UTF-16/32 by their BOM or zero bytes).
        document = _DECODER.decode(data.decode(json.detect_encoding(data)))  # strict: no lone surrogates
    except _DuplicateKey:
        raise InvalidRequest("The request body names a field more than once.") from None
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError; nesting too deep
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


# The proxy-event fields the function (and Powertools' resolver) reads, with the types API
# Gateway sends. Anything else is not an event API Gateway wrote: a 400, never a crash.
_EVENT_TEXT = ("httpMethod", "path")
_EVENT_OPTIONAL_TEXT = ("body", "resource")
_EVENT_TEXT_MAPS = ("headers", "queryStringParameters", "pathParameters", "stageVariables")
_EVENT_LIST_MAPS = ("multiValueHeaders", "multiValueQueryStringParameters")


_STR = frozenset({str})
_LIST = frozenset({list})


def _text_map(value: object) -> bool:
    # Types gathered with map() (C speed): an event carries some 30 headers, on every request.
    return isinstance(value, dict) and {*map(type, value)} <= _STR and {*map(type, value.values())} <= _STR


def _list_map(value: object) -> bool:
    return (
        isinstance(value, dict)
        and {*map(type, value)} <= _STR
        and {*map(type, value.values())} <= _LIST
        and {*map(type, chain.from_iterable(value.values()))} <= _STR
    )


def check_proxy_event(unverified_event: Mapping[str, Any]) -> None:
    """Refuse an event whose fields do not have the types of an API Gateway REST proxy event."""
    get = unverified_event.get
    if not all(isinstance(get(name), str) for name in _EVENT_TEXT):
        raise InvalidRequest("The request has no method or path.")
    if not (
        all(isinstance(get(name), str | None) for name in _EVENT_OPTIONAL_TEXT)
        and isinstance(get("isBase64Encoded"), bool | None)
        and all(get(name) is None or _text_map(get(name)) for name in _EVENT_TEXT_MAPS)
        and all(get(name) is None or _list_map(get(name)) for name in _EVENT_LIST_MAPS)
    ):
        raise InvalidRequest("The request is not valid.")
