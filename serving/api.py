"""The HTTP API (FastAPI: routing, parameter validation and the OpenAPI document come from one
declaration, so the spec cannot drift from the code). ``GET /openapi.json`` serves the spec;
``serving/openapi.json`` is the same document, committed for clients (a test keeps them equal).

Every rejection is a 4xx whose JSON body is ``{"error": "<one line>"}`` (422s add ``detail``):
bad parameters 422, an invalid event 400/422, a body over ``events.max_bytes`` 413, a user owned
by another worker 421, not ready yet 503, a missing or wrong bearer token 401 (when
``serving.api_token`` is set: it guards /v1/; health, readiness and metrics stay open for probes).
"""

import asyncio
import hmac
import ipaddress
import logging
import threading
import time
from typing import Annotated, Any

import msgspec
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.backend import Accepted, NotOwned, NotReady, ServingBackend
from serving.metrics import ServingMetrics
from serving.scorer import Recommendation
from stream.config import Config
from stream.events import Event, InvalidEvent

log = logging.getLogger(__name__)
INGEST_TIMEOUT_S = 10.0
_STATUS_OF_REASON = {"oversized": 413, "malformed_json": 400}  # other reasons (schema, version): 422


class ErrorBody(msgspec.Struct):
    error: str


_encoder = msgspec.json.Encoder()


def _json(status: int, body: Any) -> Response:
    return Response(_encoder.encode(body), status_code=status, media_type="application/json")


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    response = _json(status, {"error": message, **extra})
    response.headers.update(headers or {})
    return response


def bearer_guard(token: str):
    """A dependency that lets a /v1/ request through only with ``Authorization: Bearer <token>``
    (always declared, so the spec documents the scheme; enforced only when a token is configured)."""
    scheme = HTTPBearer(auto_error=False, description="serving.api_token, when the operator sets one")
    expected = token.encode()

    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)]) -> None:
        if not expected:
            return
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, expected):  # constant time: no guessing by timing
            raise HTTPException(
                401,
                "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


def _schema_components() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        [Event, Recommendation, ErrorBody, Accepted], ref_template="#/components/schemas/{name}"
    )
    return components


def _ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": "rejected; the body says why", "content": _ref("ErrorBody")} for code in codes}


class RequestTimer:
    """ASGI middleware: request latency by route template (never by raw path: no ids as labels)."""

    def __init__(self, app, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            self.metrics.request_seconds.labels(
                getattr(route, "path", "unmatched"), scope["method"], str(status[0])
            ).observe(time.perf_counter() - started)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def create_app(backend: ServingBackend, cfg: Config, metrics: ServingMetrics) -> FastAPI:
    serving = cfg.serving
    max_body = cfg.events.max_bytes
    app = FastAPI(
        title="streamrec",
        version="1",
        description="Real-time recommendations from the streamrec workers that own each user's state.",
    )
    app.add_middleware(RequestTimer, metrics=metrics)
    if not serving.api_token and not _is_loopback(serving.host):
        log.warning(
            "the HTTP API listens on %s without serving.api_token: anyone who reaches it can read "
            "recommendations and produce events; set STREAMREC_SERVING__API_TOKEN",
            serving.host,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return _error(422, f"{where}: {first.get('msg')}", detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    authorised = [Depends(bearer_guard(serving.api_token))]

    @app.get(
        "/v1/recommendations/{user_id}",
        responses={200: {"content": _ref("Recommendation")}, **_errors(401, 421, 422, 503)},
        dependencies=authorised,
        summary="The user's top-k unseen items, ranked now by the model in use (or the online learners)",
    )
    def recommendations(
        user_id: Annotated[str, Path(min_length=1, max_length=128)],
        k: Annotated[int, Query(ge=1, le=serving.max_k)] = serving.k,
        exclude: Annotated[list[str], Query(max_length=100, description="item ids not to return")] = [],  # noqa: B006
    ) -> Response:
        if any(not 1 <= len(item) <= 128 for item in exclude):
            return _error(422, "exclude: every item id must be 1-128 characters")
        try:
            rec = backend.recommend(user_id, k, tuple(exclude))
        except NotOwned as exc:
            return _error(
                421,
                f"user {user_id!r} belongs to partition {exc.partition}, "
                "which another worker owns; send the request there",
                partition=exc.partition,
            )
        except NotReady as exc:
            return _error(503, f"not ready: {exc}; retry shortly")
        return _json(200, rec)

    @app.post(
        "/v1/events",
        status_code=202,
        responses={202: {"content": _ref("Accepted")}, **_errors(400, 401, 413, 422, 503)},
        dependencies=authorised,
        openapi_extra={"requestBody": {"required": True, "content": _ref("Event")}},
        summary="Validate one event and produce it to the events topic (keyed by user id)",
    )
    async def ingest(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            return _error(413, f"body over the limit of {max_body} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                return _error(413, f"body over the limit of {max_body} bytes")
        try:
            future = backend.ingest.submit(bytes(body))
        except InvalidEvent as exc:
            return _error(_STATUS_OF_REASON.get(exc.reason, 422), f"{exc.reason}: {exc.detail}"[:500])
        try:
            accepted = await asyncio.wait_for(asyncio.wrap_future(future), INGEST_TIMEOUT_S)
        except (TimeoutError, RuntimeError) as exc:
            return _error(503, f"the event was not acknowledged by Kafka ({exc or 'timeout'}); retry it")
        metrics.events_ingested.inc()
        return _json(202, accepted)

    @app.get("/healthz", summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        responses={503: {"description": "not ready yet"}},
        summary="Ready when this worker owns partitions to answer for",
    )
    def readyz() -> Response:
        ready, status = backend.readiness()
        return _json(200 if ready else 503, {"ready": ready, **status})

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(_schema_components())
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi
    return app


class ApiUnavailable(OSError):
    """The HTTP API could not start (typically: the port is taken)."""


class ApiServer:
    """uvicorn on a background thread (it installs no signal handlers off the main thread)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        )
        self.thread: threading.Thread | None = None
        self.host, self.port = host, port

    def start(self, timeout_s: float = 10.0) -> None:
        self.thread = threading.Thread(target=self.server.run, name="http-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ApiUnavailable(f"the HTTP API could not start on {self.host}:{self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(5)


def openapi_document(cfg: Config) -> dict[str, Any]:
    """The spec alone (no backend is needed to describe the routes)."""
    from prometheus_client import CollectorRegistry

    return create_app(None, cfg, ServingMetrics(CollectorRegistry())).openapi()  # type: ignore[arg-type]


if __name__ == "__main__":  # regenerate the committed spec: python -m serving.api > serving/openapi.json
    import json

    from stream.config import load_config

    print(json.dumps(openapi_document(load_config(env={})), indent=2))
