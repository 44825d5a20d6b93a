"""CloudFormation's AWS::IAM::OIDCProvider for LocalStack community, which has none.

Why: without a resource provider, LocalStack's CloudFormation skips the type with a warning
(CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES is on by default) and the stack "succeeds" with no
provider in IAM. The STS rules (web_identity.py) then refuse every web identity token of
the stack's issuer with "No OpenIDConnect provider found", as AWS would for a stack that
had none. This provider creates the real thing through LocalStack's IAM API:
`Ref` and `Fn::GetAtt ... Arn` give the provider's ARN, as on AWS.

Registered through the plux namespace `localstack.cloudformation.resource_providers`
(plugin pyproject). Runs inside LocalStack only.
"""

from __future__ import annotations

import contextlib
from typing import Any

from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)

TYPE = "AWS::IAM::OIDCProvider"

# The parts of AWS's resource schema LocalStack's engine reads: the primary identifier (the
# physical id, so Ref is the ARN), read-only and create-only properties.
SCHEMA: dict[str, Any] = {
    "typeName": TYPE,
    "properties": {
        "Arn": {"type": "string"},
        "ClientIdList": {"type": "array", "items": {"type": "string"}},
        "Tags": {"type": "array", "items": {"type": "object"}},
        "ThumbprintList": {"type": "array", "items": {"type": "string"}},
        "Url": {"type": "string"},
    },
    "primaryIdentifier": ["/properties/Arn"],
    "readOnlyProperties": ["/properties/Arn"],
    "createOnlyProperties": ["/properties/Url"],
}


class OIDCProviderProvider(ResourceProvider[dict[str, Any]]):
    TYPE = TYPE
    SCHEMA = SCHEMA

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = request.desired_state
        params: dict[str, Any] = {
            "Url": model["Url"],
            "ClientIDList": list(model.get("ClientIdList") or []),
            "ThumbprintList": list(model.get("ThumbprintList") or []),
        }
        if model.get("Tags"):
            params["Tags"] = model["Tags"]
        created = request.aws_client_factory.iam.create_open_id_connect_provider(**params)
        model["Arn"] = created["OpenIDConnectProviderArn"]
        return ProgressEvent(
            status=OperationStatus.SUCCESS, resource_model=model, custom_context=request.custom_context
        )

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        raise NotImplementedError

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        arn = request.desired_state.get("Arn")
        if arn:
            iam = request.aws_client_factory.iam
            # already gone is fine: deleting is idempotent
            with contextlib.suppress(iam.exceptions.NoSuchEntityException):
                iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model={})

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Client ids and thumbprints change in place (a new Url replaces the resource)."""
        model, previous = request.desired_state, request.previous_state or {}
        arn = model.get("Arn") or previous["Arn"]
        model["Arn"] = arn
        iam = request.aws_client_factory.iam
        wanted, had = set(model.get("ClientIdList") or []), set(previous.get("ClientIdList") or [])
        for client_id in sorted(wanted - had):
            iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=client_id)
        for client_id in sorted(had - wanted):
            iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=client_id)
        if list(model.get("ThumbprintList") or []) != list(previous.get("ThumbprintList") or []):
            iam.update_open_id_connect_provider_thumbprint(
                OpenIDConnectProviderArn=arn, ThumbprintList=list(model.get("ThumbprintList") or [])
            )
        return ProgressEvent(
            status=OperationStatus.SUCCESS, resource_model=model, custom_context=request.custom_context
        )


class OIDCProviderProviderPlugin(CloudFormationResourceProviderPlugin):
    name = TYPE

    def __init__(self) -> None:
        self.factory: type[ResourceProvider[Any]] | None = None

    def load(self) -> None:
        self.factory = OIDCProviderProvider
