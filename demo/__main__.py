"""`make demo`: the guided tour. LocalStack, the real stack, a 12-hour ask, clamped, then
granted in full on a web_identity role.

Runs on LocalStack with the project's own plugins (no Docker, no AWS account): the same
launcher, deployment and identities as the end-to-end tests, and the same code path as
`make local` (credvend_local/local.py). Leaves it running for you to explore, and ends with
the `export` lines that make you the demo caller, as `make local` does; `make demo-stop`
stops it. Vended credentials are never printed in full.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import botocore.exceptions

from credvend_local import launcher, local
from credvend_local.identities import ACCOUNT, admin_client, client_with
from credvend_local.sigv4 import signed_request

DEMO_POLICY = Path(__file__).with_name("policy.yaml")
NAME = "demo"  # the LocalStack instance (and `python -m credvend_local env --name demo`)
DEMO_CALLER = "demo-task"
TWELVE_HOURS = 43200
HAND_WRITTEN_ROLE = "HandWrittenReportsReader"
STEPS = 8


def step(number: int, title: str) -> None:
    print(f"\n\033[1m[{number}/{STEPS}] {title}\033[0m", flush=True)


def say(text: str = "") -> None:
    print(f"      {text}" if text else "", flush=True)


def masked(credentials: dict[str, Any]) -> dict[str, Any]:
    """Credentials fit to print: the key id and expiry, never the secret or the token."""
    return {k: (v if k in ("AccessKeyId", "Expiration", "Version") else "****") for k, v in credentials.items()}


def show(document: dict[str, Any]) -> None:
    for line in json.dumps(document, indent=2).splitlines():
        say(line)


def start_localstack() -> launcher.LocalStack:
    step(1, "Setting up LocalStack 2026.3.0 (its own venv, credvend's test plugins)")
    started = time.monotonic()
    instance = local.start(NAME)
    say(f"LocalStack is up at {instance.endpoint} ({time.monotonic() - started:.0f} s)")
    say("Its plugins run Lambda functions as local processes, check SigV4 on the API like")
    say("API Gateway does, and make STS enforce trust policies and the role-chaining limit.")
    return instance


def deploy_stack(instance: launcher.LocalStack) -> local.LocalCredvend:
    step(2, "cdk bootstrap + cdk deploy of the real app, with demo/policy.yaml")
    say("(the same commands you would run against an AWS account)")
    started = time.monotonic()
    deployment = local.deploy(instance, DEMO_POLICY)
    say(f"deployed in {time.monotonic() - started:.0f} s; API: {deployment.api_url}")
    role_arn = json.loads(deployment.outputs["RoleArns"])["reports-reader"]
    say(f"target role: {role_arn} (MaxSessionDuration 12 h)")
    return deployment


def create_demo_caller(deployment: local.LocalCredvend) -> local.Caller:
    step(3, "A caller: a session of role credvend-demo-task, like an ECS task or a Lambda function")
    caller = local.open_caller_session(deployment, DEMO_CALLER, session_name="task-7f3a")
    arn = client_with("sts", deployment.endpoint, caller.credentials).get_caller_identity()["Arn"]
    say(f"the caller is {arn}")
    return caller


def hand_written_attempt(endpoint: str, caller: Any) -> None:
    step(4, "What most teams write by hand: STS, 12 hours, from inside a role")
    iam = admin_client("iam", endpoint)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/credvend-demo-task"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):  # a second run of the demo
        iam.create_role(
            RoleName=HAND_WRITTEN_ROLE, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=TWELVE_HOURS
        )
    say(f"a role that trusts the task and allows 12 hours: {HAND_WRITTEN_ROLE}")
    say(f'boto3.client("sts").assume_role(RoleArn=".../{HAND_WRITTEN_ROLE}", DurationSeconds=43200, ...)')
    try:
        client_with("sts", endpoint, caller).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{HAND_WRITTEN_ROLE}",
            RoleSessionName="hand-written",
            DurationSeconds=TWELVE_HOURS,
        )
    except botocore.exceptions.ClientError as error:
        say(f"\033[31m✗ {error.response['Error']['Code']}: {error.response['Error']['Message']}\033[0m")
        say("The role allows 12 hours, but the caller is itself a role session: role chaining")
        say("caps every AssumeRole at 1 hour, and STS fails the call instead of shortening it.")
    else:
        say("unexpected: STS granted 12 hours (is the STS rules plugin loaded?)")


def vend_through_credvend(api_url: str, caller: Any) -> dict[str, Any]:
    step(5, "The same ask through credvend: POST /credentials, SigV4-signed by the same caller")
    body = {"role": "reports-reader", "duration_seconds": TWELVE_HOURS}
    say(f"POST {api_url}/credentials {json.dumps(body)}")
    response = signed_request("POST", f"{api_url}/credentials", caller, body=body)
    payload = response.json()
    if response.status_code != 200:
        say(f"\033[31m✗ HTTP {response.status_code}: {payload}\033[0m")
        raise SystemExit(1)
    say(f"\033[32m✓ HTTP 200\033[0m (Cache-Control: {response.headers.get('Cache-Control')})")
    show({**payload, "Credentials": masked(payload["Credentials"])})
    grant = payload["Grant"]
    say(
        f"asked {grant['RequestedDurationSeconds']} s, granted {grant['GrantedDurationSeconds']} s, "
        f"limited by {grant['LimitedBy']}: credvend clamps to what AWS allows and says why."
    )
    return payload


def vend_web_identity(api_url: str, endpoint: str, caller: Any) -> None:
    step(6, "The same 12-hour ask on a web_identity role: credvend as its own OIDC issuer")
    say("batch-reader has `issuance: web_identity`: credvend signs a 5-minute token with a KMS key only")
    say("the function may use and calls AssumeRoleWithWebIdentity, which is unsigned, so not chaining.")
    body = {"role": "batch-reader", "duration_seconds": TWELVE_HOURS}
    say(f"POST {api_url}/credentials {json.dumps(body)}")
    response = signed_request("POST", f"{api_url}/credentials", caller, body=body)
    payload = response.json()
    if response.status_code != 200:
        say(f"\033[31m✗ HTTP {response.status_code}: {payload}\033[0m")
        raise SystemExit(1)
    grant = payload["Grant"]
    show({"Credentials": masked(payload["Credentials"]), "Grant": grant})
    identity = client_with("sts", endpoint, payload["Credentials"]).get_caller_identity()
    say(f"GetCallerIdentity: {identity['Arn']}")
    say(
        f"\033[32m✓ asked {grant['RequestedDurationSeconds']} s, granted {grant['GrantedDurationSeconds']} s "
        f"({grant['GrantedDurationSeconds'] // 3600} hours), limited by {grant['LimitedBy']}\033[0m"
        " — no long-term key anywhere."
    )
    jwks = signed_request("GET", f"{api_url}/.well-known/jwks.json", None).json()
    say(f"STS verifies each token with the public JWKS (an unsigned GET): kid {jwks['keys'][0]['kid']}")


def use_credentials(endpoint: str, payload: dict[str, Any]) -> None:
    step(7, "Using the credentials")
    identity = client_with("sts", endpoint, payload["Credentials"]).get_caller_identity()
    say(f"GetCallerIdentity: {identity['Arn']}")
    say("CloudTrail (on AWS) shows the session name and SourceIdentity 'demo-task': who got what.")


def refusal(api_url: str, caller: Any) -> None:
    step(8, "And a refusal: a role this caller was never granted")
    response = signed_request("GET", f"{api_url}/credentials/payroll-admin", caller)
    say(f"GET /credentials/payroll-admin → HTTP {response.status_code} {json.dumps(response.json())}")
    say("Unknown callers, unknown roles and ungranted roles all get the same AccessDenied.")


def explore(deployment: local.LocalCredvend, caller: local.Caller) -> None:
    """The same export lines as `make local`: the demo caller's session, so the commands work."""
    print("\n\033[1mDone.\033[0m LocalStack keeps running so you can explore, as the demo caller:")
    say("paste the export lines below into your shell, or run")
    say('  eval "$(.venv/bin/python -m credvend_local env --name demo --caller demo-task)"')
    say("then:  .venv/bin/credvend get reports-reader --duration 43200   # clamped: role chaining")
    say("       .venv/bin/credvend get batch-reader --duration 43200     # 12 hours: web_identity")
    say("       .venv/bin/credvend get payroll-admin        # refused: AccessDenied")
    say("       aws sts get-caller-identity                 # if you have the AWS CLI")
    say(f"The session expires in {(caller.expires_in_seconds or 0) // 60} minutes; the env command issues a fresh one.")
    say("Stop it with: make demo-stop")
    print("\n".join(local.export_lines(deployment, caller)), flush=True)


def main() -> int:
    instance = start_localstack()
    deployment = deploy_stack(instance)
    caller = create_demo_caller(deployment)
    hand_written_attempt(instance.endpoint, caller.credentials)
    payload = vend_through_credvend(deployment.api_url, caller.credentials)
    vend_web_identity(deployment.api_url, instance.endpoint, caller.credentials)
    use_credentials(instance.endpoint, payload)
    refusal(deployment.api_url, caller.credentials)
    explore(deployment, caller)
    return 0


if __name__ == "__main__":
    sys.exit(main())
