"""What the routes stand on, set once on ``app.state`` by ``create_app`` and injected with ``Depends``."""

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.backend import ServingBackend
from serving.metrics import ServingMetrics
from stream.config import ServingConfig


def get_backend(request: Request) -> ServingBackend:
    backend: ServingBackend = request.app.state.backend
    return backend


def get_metrics(request: Request) -> ServingMetrics:
    metrics: ServingMetrics = request.app.state.metrics
    return metrics


def get_max_body(request: Request) -> int:
    max_body: int = request.app.state.max_body
    return max_body


def get_serving_config(request: Request) -> ServingConfig:
    serving: ServingConfig = request.app.state.serving
    return serving


_bearer = HTTPBearer(auto_error=False, description="serving.api_token, when the operator sets one")


def require_token(
    serving: Annotated[ServingConfig, Depends(get_serving_config)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Lets a /v1/ request through only with ``Authorization: Bearer <token>`` (always declared, so
    the spec documents the scheme; enforced only when ``serving.api_token`` is set)."""
    expected = serving.api_token.encode()
    if not expected:
        return
    given = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(given, expected):  # constant time: no guessing by timing
        raise HTTPException(
            401,
            "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


Backend = Annotated[ServingBackend, Depends(get_backend)]
Metrics = Annotated[ServingMetrics, Depends(get_metrics)]
MaxBody = Annotated[int, Depends(get_max_body)]
