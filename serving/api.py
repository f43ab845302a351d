"""The HTTP API (FastAPI: routing, parameter validation and the OpenAPI document come from one
declaration, so the spec cannot drift from the code). ``GET /openapi.json`` serves the spec;
``serving/openapi.json`` is the same document, committed for clients (a test keeps them equal).

Every rejection is a 4xx whose JSON body is ``{"error": "<one line>"}`` (422s add ``detail``):
bad parameters 422, an invalid event 400/422, a body over ``events.max_bytes`` 413, a user owned
by another worker 421 when this worker does not forward (``serving.forward``), not ready yet or no
owner answering in time 503, a missing or wrong bearer token 401 (when
``serving.api_token`` is set: it guards /v1/; health, readiness and metrics stay open for probes).
"""

import contextlib
import ipaddress
import logging
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.backend import ServingBackend
from serving.metrics import ServingMetrics
from serving.middleware import RequestTimer
from serving.responses import http_error, invalid_parameters, schema_components
from serving.routes import events, metrics, probes, recommendations
from serving.routes.dependencies import ApiState
from stream.config import Config

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class StreamrecApi(FastAPI):
    """FastAPI whose spec carries the bodies' schemas from their msgspec Structs."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            spec = get_openapi(title=self.title, version=self.version, description=self.description, routes=self.routes)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(schema_components())
            self.openapi_schema = spec
        return self.openapi_schema


def create_app(backend: ServingBackend, cfg: Config, serving_metrics: ServingMetrics) -> FastAPI:
    """The app over ``backend``: routes, error handling, request timing and what the routes read."""
    serving = cfg.serving
    app = _routes(cfg)
    app.state.api = ApiState(backend, serving_metrics, serving, cfg.events.max_bytes)
    app.add_middleware(RequestTimer, metrics=serving_metrics)
    if not serving.api_token and not _is_loopback(serving.host):
        log.warning(
            "the HTTP API listens on %s without serving.api_token: anyone who reaches it can read "
            "recommendations and produce events; set STREAMREC_SERVING__API_TOKEN",
            serving.host,
        )
    return app


def _routes(cfg: Config) -> StreamrecApi:
    """The routes and their error handling: all the spec describes."""
    app = StreamrecApi(
        title="streamrec",
        version="1",
        description="Real-time recommendations from the streamrec workers that own each user's state.",
    )
    app.add_exception_handler(RequestValidationError, invalid_parameters)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.include_router(recommendations.router(cfg.serving))
    for router in (events.router, probes.router, metrics.router):
        app.include_router(router)
    return app


class ApiUnavailable(OSError):
    """The HTTP API could not start (typically: the port is taken)."""


class ApiServer:
    """uvicorn on a background thread (it installs no signal handlers off the main thread)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        # log_config=None: uvicorn's records go through the process's one logging set-up
        # (streamrec.logs) instead of handlers of its own.
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off", log_config=None
        )
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None
        self.host, self.port = host, port

    def start(self, timeout_s: float = 10.0) -> None:
        self.thread = threading.Thread(target=self._serve, name="http-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ApiUnavailable(f"the HTTP API could not start on {self.host}:{self.port}")
            time.sleep(0.02)

    def _serve(self) -> None:
        # uvicorn ends a failed start-up (e.g. the port is taken) with SystemExit after logging why;
        # start() reports it as ApiUnavailable, so the thread need not die with a traceback.
        with contextlib.suppress(SystemExit):
            self.server.run()

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(5)


def openapi_document(cfg: Config) -> dict[str, Any]:
    """The spec alone (no backend is needed to describe the routes)."""
    return _routes(cfg).openapi()


if __name__ == "__main__":  # regenerate the committed spec: python -m serving.api > serving/openapi.json
    import json

    from stream.config import load_config

    print(json.dumps(openapi_document(load_config(env={})), indent=2))
