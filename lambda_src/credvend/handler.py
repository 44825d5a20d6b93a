"""Lambda entry point: ``credvend.handler.handler``.

Thin by design: HTTP in (Powertools' REST resolver), the domain decides, HTTP out. All
module state lives in one lazily built ``Runtime`` (policy, STS client, what the container
learned about itself), so nothing happens at import time that a request does not need and
tests reset the whole cold-start state with ``reset_runtime()``.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from credvend.coldstart import gc_paused

with gc_paused():  # the modules below live as long as the container (credvend/coldstart.py)
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    from credvend import metric_names
    from credvend.domain.authorize import OidcIdentity, verified_principal_arn
    from credvend.domain.errors import (
        AccessDenied,
        CredvendError,
        InternalError,
        NotFound,
        Throttled,
        Unauthenticated,
    )
    from credvend.domain.formats import render, render_dry_run
    from credvend.domain.requests import VendRequest, check_proxy_event, parse_body, parse_path_and_query
    from credvend.domain.vend import Decision, StsPort, VendService
    from credvend.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from credvend.domain.web_identity import SigningKeyPort, WebIdentityIssuer
    from credvend.oidc.verify import OidcVerifier

JSON = "application/json"
_LOG_MESSAGE = "credential vend decision"
_DENIALS = frozenset({AccessDenied.code, Unauthenticated.code})
# The issuer's discovery routes (CONTRACT §9): public, the only requests served without a
# caller identity. Matched on API Gateway's ``resource`` (the route it matched), never on
# anything the client controls beyond choosing that route.
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
_PUBLIC_RESOURCES = frozenset({DISCOVERY_PATH, JWKS_PATH})
# STS and other relying parties may cache the documents; a key rotation lists both keys
# for longer than this (README: rotating the signing key).
DISCOVERY_MAX_AGE_SECONDS = 300
# Kept back from the time Lambda gives the request, so the answer (even a 503) is written
# and logged before the function timeout; STS calls must finish before it.
DEADLINE_MARGIN_SECONDS = 1.0
# Token-authenticated routes (CONTRACT §10). Everything else is SigV4 (IAM) only.
OIDC_PREFIX = "/oidc/"


_json = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per json.dumps call
_JSON_VALUE_STARTS = frozenset('{["-0123456789tfnNI')


def _log_line_serializer() -> Callable[[Any], str]:
    """What Powertools' formatter serializes a log line with (``json.dumps`` with these
    options, indented under POWERTOOLS_DEV), as one encoder instead of one per line."""
    from aws_lambda_powertools.shared import constants
    from aws_lambda_powertools.shared.functions import powertools_dev_is_set

    indent = constants.PRETTY_INDENT if powertools_dev_is_set() else constants.COMPACT_INDENT
    return json.JSONEncoder(default=str, separators=(",", ":"), indent=indent, ensure_ascii=False).encode


def _log_message(message: Any) -> Any:
    """Powertools reads every text log message as JSON if it can (a JSON document is logged as
    one) and keeps the text when parsing fails. Ours are plain sentences: the same answer, without
    raising and catching a JSONDecodeError on every line, for text that cannot start a JSON value."""
    if isinstance(message, str) and message.lstrip()[:1] not in _JSON_VALUE_STARTS:
        return message
    return json.loads(message)


def error_response(error: CredvendError, request_id: str) -> Response[str]:
    """Every error answer: status and code from the one table in credvend/domain/errors.py."""
    headers: dict[str, str] = {}
    if isinstance(error, Throttled):
        headers["Retry-After"] = str(error.retry_after_seconds)
    body = {"Error": {"Code": error.code, "Message": error.message}, "RequestId": request_id}
    return Response(status_code=error.status, content_type=JSON, body=_json(body), headers=headers)


class Runtime:
    """Everything one container builds once: observability, the router and the service."""

    def __init__(
        self, settings: Settings, *, sts: StsPort | None = None, signing_key: SigningKeyPort | None = None
    ) -> None:
        self.settings = settings
        # Powertools' JSON formatter drops the thread and process fields of every record; not
        # collecting them spares each log line a few lookups and a getpid system call
        # ("Optimization" in the logging HOWTO). The function never imports asyncio.
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        self.logger = Logger(
            service=settings.service_name,
            log_uncaught_exceptions=False,
            json_serializer=_log_line_serializer(),
            json_deserializer=_log_message,
        )
        self.metrics = Metrics(namespace=settings.metrics_namespace, service=settings.service_name)
        self._sts = sts
        self._signing_key = signing_key
        self._service: VendService | None = None
        self._web_identity: WebIdentityIssuer | None = None
        self._oidc: OidcVerifier | None = None
        self._principal_arn: str | None = None
        self._token: OidcIdentity | None = None
        # debug=False whatever POWERTOOLS_DEV says: debug mode prints the raw event, whose
        # headers carry the caller's X-Amz-Security-Token.
        self.app = APIGatewayRestResolver(debug=False)
        self.app.post("/credentials")(self._post)
        self.app.get("/credentials/<role>")(self._get)
        self.app.post("/oidc/credentials")(self._post)
        self.app.get("/oidc/credentials/<role>")(self._get)
        self.app.get(DISCOVERY_PATH)(self._discovery)
        self.app.get(JWKS_PATH)(self._jwks)
        self.app.not_found(self._not_found)
        self.app.exception_handler(CredvendError)(self._on_error)
        self.app.exception_handler(Exception)(self._on_unexpected)
        self.handle = self._observed(self._handle)

    # -- composition ---------------------------------------------------------------------
    @property
    def service(self) -> VendService:
        """Policy and STS adapter, built on the first request that needs them."""
        if self._service is None:
            # Built once, kept for the container's life (credvend/coldstart.py).
            with gc_paused(freeze=True):
                from credvend.adapters.sts import BotoSts
                from credvend_policy import PolicyError, load_policy

                try:
                    policy = load_policy(self.settings.policy_file)
                except PolicyError as exc:
                    # Fail closed, and tell the operator why; the caller learns nothing of it.
                    # Each request tries again (and logs again) until a fixed file is deployed.
                    self.logger.error(
                        "invalid policy file",
                        extra={
                            "policy_file": exc.source,
                            "problems": [{"path": path or "<root>", "message": msg} for path, msg in exc.problems],
                        },
                    )
                    raise InternalError() from None
                self._sts = self._sts or BotoSts()
                configured = self.settings.issuer is not None and self.settings.signing_key is not None
                self._service = VendService(policy, self._sts, web_identity=self.web_identity if configured else None)
        return self._service

    @property
    def oidc(self) -> OidcVerifier:
        """The token verifier and its key cache; imported and built on the first OIDC request
        only, so the IAM path never loads PyJWT or cryptography."""
        if self._oidc is None:
            with gc_paused(freeze=True):
                from credvend.oidc.verify import OidcVerifier

                self._oidc = OidcVerifier(self.service.policy.issuers)
        return self._oidc

    def web_identity(self) -> WebIdentityIssuer:
        """The OIDC issuer, built on the first web_identity vend or discovery request: its
        modules (KMS, token encoding) are never imported by an assume_role-only container."""
        if self._web_identity is None:
            issuer, key_id = self.settings.issuer, self.settings.signing_key
            if issuer is None or key_id is None:
                raise InternalError(reason="web_identity_not_configured")
            with gc_paused(freeze=True):
                from credvend.adapters.kms import KmsSigningKey
                from credvend.domain.web_identity import WebIdentityIssuer

                if self._signing_key is None:
                    self._signing_key = KmsSigningKey(key_id)
                if self._sts is None:
                    from credvend.adapters.sts import BotoSts

                    self._sts = BotoSts()
                published: list[SigningKeyPort] = [KmsSigningKey(key) for key in self.settings.published_keys]
            self._web_identity = WebIdentityIssuer(
                issuer=issuer, key=self._signing_key, sts=self._sts, published=published
            )
        return self._web_identity

    def _observed(self, handle: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        wrapped: Callable[..., dict[str, Any]] = self.metrics.log_metrics(capture_cold_start_metric=True)(handle)
        wrapped = self.logger.inject_lambda_context(log_event=False, clear_state=True)(wrapped)
        if self.settings.in_lambda and not self.settings.trace_disabled and _xray_sdk_available():
            # Only when the X-Ray SDK is present: Powertools' Tracer imports it on
            # construction (~0.3 s), which the default bundle does not pay. Never record
            # the response: it carries credentials.
            from aws_lambda_powertools import Tracer

            tracer = Tracer(service=self.settings.service_name)
            wrapped = tracer.capture_lambda_handler(capture_response=False, capture_error=False)(wrapped)
        return wrapped

    # -- request lifecycle ----------------------------------------------------------------
    def _handle(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        request_id = _request_id(event, context)
        self.logger.set_correlation_id(request_id)
        oidc_route = _is_oidc_route(event)
        # An OIDC route never looks at a SigV4 identity, an IAM route never at a token.
        self._decision = Decision(request_id=request_id, principal_arn=None if oidc_route else _user_arn(event))
        self._context = context
        self._principal_arn = self._token = None
        public = _is_public_route(event)
        try:
            # The caller's identity before anything else in the request (route, size, body,
            # query): a request without one is a 401 whatever else is wrong with it. Only
            # the issuer's discovery documents are public.
            if oidc_route:
                self._token = self._verified_token(event)
            elif not public:
                self._principal_arn = verified_principal_arn(self._decision.principal_arn)
            check_proxy_event(event)
            result: dict[str, Any] = self.app.resolve(event, context)  # type: ignore[arg-type]
        except CredvendError as error:  # 401/400, or 503/500 while verifying a token (JWKS, policy)
            result = _proxy_result(self._on_error(error))
        except Exception as exc:  # an event the resolver cannot even read: still JSON, never a trace
            self._log_unexpected(exc)
            result = _proxy_result(self._on_error(InternalError()))
        if not public or self._decision.outcome == "failed":
            self._audit(self._decision)
        else:  # a discovery document (STS verifying a token, or anyone): counted, not audited
            self.metrics.add_metric(name="DiscoveryRequests", unit=MetricUnit.Count, value=1)
        return result

    def _verified_token(self, event: dict[str, Any]) -> OidcIdentity:
        from credvend.oidc.verify import bearer_token

        unverified_token = bearer_token(event.get("headers"), event.get("multiValueHeaders"))
        identity = self.oidc.verify(unverified_token)
        self._decision.issuer, self._decision.subject = identity.issuer, identity.subject
        return identity

    def _post(self) -> Response[str]:
        event = self.app.current_event
        return self._vend(parse_body(event.body, is_base64=bool(event.is_base64_encoded)))

    def _get(self, role: str) -> Response[str]:
        event = self.app.current_event
        self._decision.role = role
        request = parse_path_and_query(role, event.query_string_parameters, event.multi_value_query_string_parameters)
        return self._vend(request)

    def _discovery(self) -> Response[str]:
        return self._public_document(lambda issuer: issuer.discovery())

    def _jwks(self) -> Response[str]:
        return self._public_document(lambda issuer: issuer.jwks())

    def _public_document(self, build: Callable[[WebIdentityIssuer], dict[str, Any]]) -> Response[str]:
        if not _is_public_route(self.app.current_event.raw_event):
            raise NotFound()  # the route was reached under another resource: not the public one
        if self.settings.issuer is None or self.settings.signing_key is None:
            raise NotFound()  # this deployment is not an OIDC issuer
        body = build(self.web_identity())
        cache = f"public, max-age={DISCOVERY_MAX_AGE_SECONDS}"
        return Response(status_code=200, content_type=JSON, body=_json(body), headers={"Cache-Control": cache})

    def _vend(self, request: VendRequest) -> Response[str]:
        decision = self._decision
        decision.role = request.role
        # Verified in _handle for every non-public route; checked again here so that no
        # routing mistake can ever vend without a caller identity, or with the wrong kind.
        token: OidcIdentity | None = None
        principal_arn: str | None = None
        if _is_oidc_route(self.app.current_event.raw_event):
            if self._token is None:
                raise Unauthenticated()
            token = self._token
        else:
            principal_arn = verified_principal_arn(self._principal_arn)
        service = self.service
        service.learn_home(getattr(self._context, "invoked_function_arn", None))
        time_left = _time_left(self._context)
        if request.dry_run:
            grant = service.preview(
                request, principal_arn=principal_arn, token=token, decision=decision, time_left=time_left
            )
            decision.outcome = "dry_run"
            return Response(
                status_code=200, content_type=JSON, body=_json(render_dry_run(grant, request_id=decision.request_id))
            )
        vended = service.vend(request, principal_arn=principal_arn, token=token, decision=decision, time_left=time_left)
        decision.outcome = "vended"
        body = render(vended, request.format, request_id=decision.request_id)
        return Response(status_code=200, content_type=JSON, body=_json(body), headers={"Cache-Control": "no-store"})

    def _not_found(self, _: Exception) -> Response[str]:
        return self._on_error(NotFound())

    def _on_error(self, error: CredvendError) -> Response[str]:
        decision = self._decision
        decision.error_code = error.code
        decision.reason = getattr(error, "reason", None) or getattr(error, "upstream_code", None)
        if error.code in _DENIALS:
            decision.outcome = "denied"
        elif error.status < 500 and error.status != 429:
            decision.outcome = "invalid"
        else:
            decision.outcome = "failed"
        return error_response(error, decision.request_id)

    def _on_unexpected(self, exc: Exception) -> Response[str]:
        self._log_unexpected(exc)
        return self._on_error(InternalError())

    def _log_unexpected(self, exc: BaseException) -> None:
        # The type and the frames, not str(exc): an exception's message may quote values.
        self.logger.error(
            "unexpected error",
            extra={"error_type": type(exc).__name__, "frames": traceback.format_tb(exc.__traceback__)},
        )

    def _audit(self, decision: Decision) -> None:
        fields = decision.log_fields()
        if decision.outcome == "failed":
            self.logger.error(_LOG_MESSAGE, extra=fields)
        else:
            self.logger.info(_LOG_MESSAGE, extra=fields)
        metrics = self.metrics
        metrics.add_metric(name=_outcome_metric(decision), unit=MetricUnit.Count, value=1)
        if decision.sts_latency_ms is not None:
            metrics.add_metric(
                name=metric_names.STS_LATENCY, unit=MetricUnit.Milliseconds, value=decision.sts_latency_ms
            )
        if decision.outcome == "vended":
            for reason in decision.limited_by:
                with single_metric(
                    name=metric_names.CLAMPS, unit=MetricUnit.Count, value=1, namespace=self.settings.metrics_namespace
                ) as metric:
                    metric.add_dimension(name=metric_names.SERVICE_DIMENSION, value=self.settings.service_name)
                    metric.add_dimension(name=metric_names.CLAMP_REASON_DIMENSION, value=reason)


def _outcome_metric(decision: Decision) -> str:
    """The count a request adds to (credvend/metric_names.py). A 429 is its own metric, not an
    error: STS throttling is load, and is alarmed on apart from failures."""
    if decision.error_code == Throttled.code:
        return metric_names.THROTTLES
    return metric_names.OUTCOME_METRICS.get(decision.outcome, metric_names.ERRORS)


def _request_id(event: Any, context: Any) -> str:
    try:
        request_id = event["requestContext"]["requestId"]
        if isinstance(request_id, str) and request_id:
            return request_id
    except (KeyError, TypeError):
        pass
    return str(getattr(context, "aws_request_id", None) or uuid.uuid4())


def _is_oidc_route(event: Any) -> bool:
    """Decided on the path the resolver routes on, so authentication and route always agree."""
    path = event.get("path") if isinstance(event, dict) else None
    return isinstance(path, str) and path.startswith(OIDC_PREFIX)


def _proxy_result(response: Response[str]) -> dict[str, Any]:
    """A Response as the Lambda proxy integration reads it, for answers built outside the resolver."""
    return {"statusCode": response.status_code, "headers": dict(response.headers), "body": response.body}


def _is_public_route(event: Any) -> bool:
    """A GET of one of the issuer's discovery documents, as API Gateway routed it."""
    if not isinstance(event, dict):
        return False
    resource = event.get("resource")  # unverified: any JSON type
    return (
        isinstance(resource, str)
        and resource in _PUBLIC_RESOURCES
        and event.get("httpMethod") == "GET"
        and event.get("path") == resource
    )


def _time_left(context: Any) -> float | None:
    """Seconds the request may still spend on STS: Lambda's remaining time less a margin."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return float(remaining()) / 1000 - DEADLINE_MARGIN_SECONDS if callable(remaining) else None


def _user_arn(event: Any) -> str | None:
    context = event.get("requestContext") if isinstance(event, dict) else None
    identity = context.get("identity") if isinstance(context, dict) else None
    arn = identity.get("userArn") if isinstance(identity, dict) else None
    return arn if isinstance(arn, str) else None


def _xray_sdk_available() -> bool:
    from importlib.util import find_spec

    return find_spec("aws_xray_sdk") is not None


_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Settings.from_env())
    return _runtime


def reset_runtime(
    *, settings: Settings | None = None, sts: StsPort | None = None, signing_key: SigningKeyPort | None = None
) -> Runtime | None:
    """Forget all cold-start state (tests). With ``settings``/``sts``/``signing_key``, build the next one now."""
    global _runtime
    _runtime = None
    if settings is not None or sts is not None or signing_key is not None:
        _runtime = Runtime(settings or Settings.from_env(), sts=sts, signing_key=signing_key)
    return _runtime


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runtime().handle(event, context)
