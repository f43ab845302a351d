"""``POST /v1/events``: validate one event and produce it to the events topic, keyed by user id."""

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from serving.responses import body_of, error_response, json_response, rejections
from serving.routes.dependencies import Api, require_token
from stream.events import InvalidEvent

INGEST_TIMEOUT_S = 10.0
_STATUS_OF_REASON = {"oversized": 413, "malformed_json": 400}  # other reasons (schema, version): 422

router = APIRouter(dependencies=[Depends(require_token)])


async def _read_body(request: Request, max_body: int) -> bytes | None:
    """The body, or None once it is over ``max_body`` (read no further than the limit)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_body):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_body:
            return None
    return bytes(body)


@router.post(
    "/v1/events",
    status_code=202,
    responses={202: {"content": body_of("Accepted")}, **rejections(400, 401, 413, 422, 503)},
    openapi_extra={"requestBody": {"required": True, "content": body_of("Event")}},
    summary="Validate one event and produce it to the events topic (keyed by user id)",
)
async def ingest(request: Request, api: Api) -> Response:
    body = await _read_body(request, api.max_body)
    if body is None:
        return error_response(413, f"body over the limit of {api.max_body} bytes")
    try:
        future = api.backend.ingest.submit(body)
    except InvalidEvent as exc:
        return error_response(_STATUS_OF_REASON.get(exc.reason, 422), f"{exc.reason}: {exc.detail}"[:500])
    try:
        accepted = await asyncio.wait_for(asyncio.wrap_future(future), INGEST_TIMEOUT_S)
    except (TimeoutError, RuntimeError) as exc:
        return error_response(503, f"the event was not acknowledged by Kafka ({exc or 'timeout'}); retry it")
    api.metrics.events_ingested.inc()
    return json_response(202, accepted)
