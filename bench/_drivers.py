"""Code the bench runs in fresh interpreters (``python -S``: no site-packages, only the
function's asset and a boto3 on ``PYTHONPATH``, as on Lambda). Kept importable-free: each
driver is a string passed to ``python -c``.

A cold driver writes one JSON line when the first response is ready: ``done`` (the
system-wide monotonic clock, comparable with the parent's ``CLOCK_MONOTONIC`` reading taken
just before it spawned the process) and ``cpu`` (this process's CPU time so far, interpreter
start included). The parent also times the whole process, interpreter teardown included,
which Lambda never pays on a request (the environment is frozen, not torn down)."""

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
def report():
    done, cpu = time.clock_gettime(time.CLOCK_MONOTONIC), time.process_time()
    with open(os.environ["BENCH_OUT"], "a") as out:
        out.write(json.dumps({"done": done, "cpu": cpu}) + "\n")
"""

COLD_CREDVEND = (
    EVENT_SETUP
    + r"""
from credvend.handler import handler
result = handler(event(BODY), Ctx())
report()
assert result["statusCode"] == 200, result
"""
)

COLD_HANDWRITTEN = (
    EVENT_SETUP
    + r"""
sys.path.insert(0, os.environ["BENCH_DIR"])
from handwritten_handler import handler
result = handler(event(BODY), Ctx())
report()
assert result["statusCode"] == 200, result
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
cpu_samples = {name: [] for name in cases}
clock, cpu_clock = time.perf_counter, time.thread_time  # wall; this process's CPU (not moto's)
for _ in range(int(os.environ["BENCH_WARM_N"])):
    for name, f in cases.items():
        c, t = cpu_clock(), clock(); f(); samples[name].append(clock() - t); cpu_samples[name].append(cpu_clock() - c)
medians = {name: statistics.median(v) for name, v in samples.items()}
cpu_medians = {name: statistics.median(v) for name, v in cpu_samples.items()}
open(os.environ["BENCH_OUT"], "a").write(json.dumps({"wall": medians, "cpu": cpu_medians}) + "\n")
"""
)
