"""CloudFormation on LocalStack, where the stack needs more than community ships.

- ``AWS::IAM::OIDCProvider``: community LocalStack 2026.3.0 has no resource provider for it,
  and by default (``CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES``) would "deploy" it as a mock
  with no provider in IAM, so STS could never find credvend's issuer. This one creates
  the provider through IAM as CloudFormation does (Url, ClientIdList, ThumbprintList, Tags;
  ``Ref`` and ``Arn`` are the provider's ARN).
- ``AWS::IAM::Role`` with ``AssumeRolePolicyDocument`` given as a JSON *string* (the
  property accepts one, and credvend's web_identity roles need it: their condition keys name
  the issuer's host, which holds the API's id, and CloudFormation resolves no intrinsic in a
  JSON key): LocalStack's provider JSON-encodes the value again, storing a quoted string
  instead of the document. The string is parsed first, as AWS does.

Registered as a CloudFormation resource provider plugin and an ``on_infra_start`` hook
(pyproject.toml); both are thin, LocalStack's imports stay inside them.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, ClassVar, TypedDict

from localstack.runtime import hooks
from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)

OIDC_PROVIDER_TYPE = "AWS::IAM::OIDCProvider"


class OidcProviderProperties(TypedDict, total=False):
    Arn: str
    Url: str
    ClientIdList: list[str]
    ThumbprintList: list[str]
    Tags: list[dict[str, str]]


class OidcProviderResource(ResourceProvider[OidcProviderProperties]):
    TYPE = OIDC_PROVIDER_TYPE
    # What the engine needs of the schema: the primary identifier (Ref returns it).
    SCHEMA: ClassVar[dict[str, Any]] = {
        "typeName": OIDC_PROVIDER_TYPE,
        "primaryIdentifier": ["/properties/Arn"],
        "readOnlyProperties": ["/properties/Arn"],
        "createOnlyProperties": ["/properties/Url"],
        "properties": {
            "Arn": {"type": "string"},
            "Url": {"type": "string"},
            "ClientIdList": {"type": "array", "items": {"type": "string"}},
            "ThumbprintList": {"type": "array", "items": {"type": "string"}},
            "Tags": {"type": "array"},
        },
    }

    def create(self, request: ResourceRequest[OidcProviderProperties]) -> ProgressEvent[OidcProviderProperties]:
        model = request.desired_state
        params: dict[str, Any] = {
            "Url": model["Url"],
            "ClientIDList": list(model.get("ClientIdList") or []),
            "ThumbprintList": list(model.get("ThumbprintList") or []),
        }
        if model.get("Tags"):
            params["Tags"] = model["Tags"]
        response = request.aws_client_factory.iam.create_open_id_connect_provider(**params)
        model["Arn"] = response["OpenIDConnectProviderArn"]
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def read(self, request: ResourceRequest[OidcProviderProperties]) -> ProgressEvent[OidcProviderProperties]:
        raise NotImplementedError

    def update(self, request: ResourceRequest[OidcProviderProperties]) -> ProgressEvent[OidcProviderProperties]:
        model = request.desired_state
        previous = request.previous_state or {}
        model["Arn"] = previous.get("Arn") or model.get("Arn", "")
        iam = request.aws_client_factory.iam
        wanted = set(model.get("ClientIdList") or [])
        current = set(previous.get("ClientIdList") or [])
        for client_id in sorted(wanted - current):
            iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=model["Arn"], ClientID=client_id)
        for client_id in sorted(current - wanted):
            iam.remove_client_id_from_open_id_connect_provider(
                OpenIDConnectProviderArn=model["Arn"], ClientID=client_id
            )
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def delete(self, request: ResourceRequest[OidcProviderProperties]) -> ProgressEvent[OidcProviderProperties]:
        arn = request.desired_state.get("Arn")
        if arn:
            iam = request.aws_client_factory.iam
            with contextlib.suppress(iam.exceptions.NoSuchEntityException):
                iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model={})


class OidcProviderPlugin(CloudFormationResourceProviderPlugin):  # type: ignore[misc]
    name = OIDC_PROVIDER_TYPE

    def __init__(self) -> None:
        self.factory: type[ResourceProvider[Any]] | None = None

    def load(self) -> None:
        self.factory = OidcProviderResource


def parsed_policy_document(value: Any) -> Any:
    """A policy document given as a JSON string, parsed; anything else unchanged."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@hooks.on_infra_start(priority=10)
def credvend_cfn_role_document_strings() -> None:
    """Parse a string AssumeRolePolicyDocument before LocalStack's role provider encodes it."""
    from localstack.services.iam.resource_providers.aws_iam_role import IAMRoleProvider
    from localstack.utils.patch import patch

    def with_parsed_document(fn: Any, self: Any, request: Any) -> Any:
        for state in (request.desired_state, getattr(request, "previous_state", None)):
            if isinstance(state, dict) and "AssumeRolePolicyDocument" in state:
                state["AssumeRolePolicyDocument"] = parsed_policy_document(state["AssumeRolePolicyDocument"])
        return fn(self, request)

    patch(IAMRoleProvider.create)(with_parsed_document)
    patch(IAMRoleProvider.update)(with_parsed_document)
