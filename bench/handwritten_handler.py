"""What most teams write by hand: the baseline credvend is measured against.

No policy, no clamping, no session naming, no logging or metrics: read the body, assume
the role, return the credentials.
"""

import json
import os

import boto3

sts = boto3.client("sts")


def handler(event, context):  # type: ignore[no-untyped-def]
    body = json.loads(event["body"] or "{}")
    response = sts.assume_role(
        RoleArn=os.environ["ROLE_ARN"],
        RoleSessionName="billing-api",
        DurationSeconds=body.get("duration_seconds", 3600),
    )
    credentials = response["Credentials"]
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(
            {
                "AccessKeyId": credentials["AccessKeyId"],
                "SecretAccessKey": credentials["SecretAccessKey"],
                "SessionToken": credentials["SessionToken"],
                "Expiration": credentials["Expiration"].isoformat(),
            }
        ),
    }
