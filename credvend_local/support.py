"""Helpers shared by the LocalStack plugin tests: clients, a tiny test function, signing."""

import io
import json
import time
import uuid
import zipfile

import boto3
from botocore.credentials import Credentials

# The test function (not credvend's): who it runs as, who called it through the gateway,
# what its context says. Behaviour switches come in the event.
HANDLER = """
import json, os, time, boto3
def handler(event, context):
    if event.get("sleep"): time.sleep(event["sleep"])
    if event.get("fail"): raise ValueError(event["fail"])
    fields = ("function_name", "function_version", "invoked_function_arn", "memory_limit_in_mb",
              "aws_request_id", "log_group_name", "log_stream_name")
    out = {"me": boto3.client("sts").get_caller_identity()["Arn"], "pid": os.getpid(), "boto3": boto3.__version__,
           "event_identity": (event.get("requestContext") or {}).get("identity"),
           "context": {k: getattr(context, k) for k in fields}}
    out["context"]["remaining_ms"] = context.get_remaining_time_in_millis()
    return {"statusCode": 200, "body": json.dumps(out)} if "requestContext" in event else out
"""

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def client(localstack, service: str, credentials: Credentials | None = None):
    keys = credentials or Credentials("test", "test")
    return boto3.client(
        service,
        endpoint_url=localstack.endpoint,
        region_name=localstack.region,
        aws_access_key_id=keys.access_key,
        aws_secret_access_key=keys.secret_key,
        aws_session_token=keys.token,
    )


def zip_files(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def create_function(localstack, files: dict[str, str] | None = None, handler: str = "app.handler", **config) -> str:
    """A Python function from a zip; waits until it is Active (or Failed). Returns its name."""
    iam, lam = client(localstack, "iam"), client(localstack, "lambda")
    role = iam.create_role(RoleName=unique("fn-role"), AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]
    name = unique("fn")
    lam.create_function(
        FunctionName=name,
        Runtime=config.pop("Runtime", "python3.13"),
        Role=role["Arn"],
        Handler=handler,
        Code={"ZipFile": zip_files(files or {"app.py": HANDLER})},
        Timeout=config.pop("Timeout", 10),
        **config,
    )
    # A Failed function is a valid outcome for some tests (they check State): wait for either.
    for _ in range(240):
        if lam.get_function_configuration(FunctionName=name)["State"] in ("Active", "Failed"):
            break
        time.sleep(0.25)
    return name


def invoke(localstack, name: str, event: dict | None = None) -> tuple[dict, str | None, str]:
    """(parsed payload, FunctionError, decoded log tail)."""
    import base64

    response = client(localstack, "lambda").invoke(FunctionName=name, Payload=json.dumps(event or {}), LogType="Tail")
    logs = base64.b64decode(response.get("LogResult", "")).decode(errors="replace")
    return json.loads(response["Payload"].read()), response.get("FunctionError"), logs


# --- SigV4 over plain HTTP, as a caller of an execute-api URL would sign ----------------------


def add_proxy_method(
    apigw,
    *,
    api_id: str,
    parent_id: str,
    path: str,
    function_arn: str,
    region: str,
    http_method: str = "ANY",
    authorization: str = "AWS_IAM",
) -> str:
    """A resource ``path`` under ``parent_id`` with one Lambda proxy method; returns its id."""
    resource = apigw.create_resource(restApiId=api_id, parentId=parent_id, pathPart=path)["id"]
    apigw.put_method(restApiId=api_id, resourceId=resource, httpMethod=http_method, authorizationType=authorization)
    apigw.put_integration(
        restApiId=api_id,
        resourceId=resource,
        httpMethod=http_method,
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
    )
    return resource
