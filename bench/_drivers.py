"""Code the bench runs in fresh interpreters (``python -S``: no site-packages, only the
function's asset and a boto3 on ``PYTHONPATH``, as on Lambda). Kept importable-free: each
driver is a string passed to ``python -c``."""

EVENT_SETUP = r"""
import json, os, sys, time
T0 = time.perf_counter()
class Ctx:
    function_name = "credvend"; function_version = "$LATEST"; memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:credvend"
    aws_request_id = "bench"; log_group_name = "/aws/lambda/credvend"; log_stream_name = "s"
    def get_remaining_time_in_millis(self): return 29000
def event(body):
    return {"resource": "/credentials", "path": "/credentials", "httpMethod": "POST",
            "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": None, "stageVariables": None, "isBase64Encoded": False,
            "requestContext": {"requestId": "bench-1", "stage": "prod", "identity": {
                "userArn": "arn:aws:sts::123456789012:assumed-role/billing-api-task/i-1"}},
            "body": json.dumps(body)}
BODY = json.loads(os.environ["BENCH_BODY"])
"""

COLD_CREDVEND = (
    EVENT_SETUP
    + r"""
from credvend.handler import handler
result = handler(event(BODY), Ctx())
T1 = time.perf_counter()
assert result["statusCode"] == 200, result
open(os.environ["BENCH_OUT"], "a").write(f"{T1 - T0}\n")
"""
)

COLD_HANDWRITTEN = (
    EVENT_SETUP
    + r"""
sys.path.insert(0, os.environ["BENCH_DIR"])
from handwritten_handler import handler
result = handler(event(BODY), Ctx())
T1 = time.perf_counter()
assert result["statusCode"] == 200, result
open(os.environ["BENCH_OUT"], "a").write(f"{T1 - T0}\n")
"""
)

# Warm: both in one process, interleaved call by call, so machine noise hits both alike.
WARM = (
    EVENT_SETUP
    + r"""
import statistics
import boto3
from credvend.handler import handler
sys.path.insert(0, os.environ["BENCH_DIR"])
import handwritten_handler
bare = boto3.client("sts")
role_arn = os.environ["ROLE_ARN"]
ev, ctx = event(BODY), Ctx()
def ours():
    assert handler(ev, ctx)["statusCode"] == 200
def handwritten():
    assert handwritten_handler.handler(ev, ctx)["statusCode"] == 200
def bare_call():
    bare.assume_role(RoleArn=role_arn, RoleSessionName="billing-api", DurationSeconds=3600)
def bare_same_request():
    # what credvend sends: the contract's session name, SourceIdentity and two session tags
    bare.assume_role(RoleArn=role_arn, RoleSessionName="billing-api", DurationSeconds=3600,
                     SourceIdentity="billing-api",
                     Tags=[{"Key": "credvend:caller", "Value": "billing-api"},
                           {"Key": "credvend:request-id", "Value": "bench-1"}])
cases = {"credvend": ours, "handwritten": handwritten, "bare_assume_role": bare_call,
         "bare_assume_role_same_request": bare_same_request}
for f in cases.values():
    for _ in range(20): f()
samples = {name: [] for name in cases}
clock = time.perf_counter
for _ in range(int(os.environ["BENCH_WARM_N"])):
    for name, f in cases.items():
        t = clock(); f(); samples[name].append(clock() - t)
medians = {name: statistics.median(v) for name, v in samples.items()}
open(os.environ["BENCH_OUT"], "a").write(json.dumps(medians) + "\n")
"""
)
