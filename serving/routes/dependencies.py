"""What the routes stand on, set once on ``app.state`` by ``create_app`` and injected with ``Depends``."""

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.backend import ServingBackend
from serving.metrics import ServingMetrics
from stream.config import ServingConfig


@dataclass(frozen=True)
class ApiState:
    """What the routes read, set once on ``app.state.api`` by ``create_app``."""

    backend: ServingBackend
    metrics: ServingMetrics
    serving: ServingConfig
    max_body: int


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


_bearer = HTTPBearer(auto_error=False, description="serving.api_token, when the operator sets one")


def require_token(
    api: Annotated[ApiState, Depends(api_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Lets a /v1/ request through only with ``Authorization: Bearer <token>`` (always declared, so
    the spec documents the scheme; enforced only when ``serving.api_token`` is set)."""
    expected = api.serving.api_token.encode()
    if not expected:
        return
    given = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(given, expected):  # constant time: no guessing by timing
        raise HTTPException(
            401,
            "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


Api = Annotated[ApiState, Depends(api_state)]
