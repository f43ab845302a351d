"""The API's one error shape, ``{"error": "<one line>"}``, and the OpenAPI fragments that document it."""

from collections.abc import Mapping
from typing import Any

import msgspec
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.backend import Accepted
from serving.scorer import Recommendation
from stream.events import Event


class ErrorBody(msgspec.Struct):
    error: str


_encoder = msgspec.json.Encoder()


def json_response(status: int, body: object) -> Response:
    """msgspec encodes the Structs the backend returns (FastAPI's encoder does not know them)."""
    return Response(_encoder.encode(body), status_code=status, media_type="application/json")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None, **extra: object) -> Response:
    response = json_response(status, {"error": message, **extra})
    response.headers.update(headers or {})
    return response


async def invalid_parameters(_request: Request, exc: Exception) -> Response:
    """A 422 whose first line names the parameter, with FastAPI's details beside it."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(part) for part in first.get("loc", ()))
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in errors]
    return error_response(422, f"{where}: {first.get('msg')}", detail=detail)


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


def schema_components() -> dict[str, Any]:
    """The bodies' JSON schemas from their msgspec Structs (the code that decodes them)."""
    _, components = msgspec.json.schema_components(
        [Event, Recommendation, ErrorBody, Accepted], ref_template="#/components/schemas/{name}"
    )
    return components


def body_of(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def rejections(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": "rejected; the body says why", "content": body_of("ErrorBody")} for code in codes}
