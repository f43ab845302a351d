"""``GET /v1/recommendations/{user_id}``: the user's top-k, from the worker that owns their state."""

import functools
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from serving.backend import NotOwned, NotReady
from serving.forward import FORWARDED_HEADER, NoOwner
from serving.responses import body_of, error_response, json_response, rejections
from serving.routes.dependencies import Api, require_token
from stream.config import ServingConfig

PATH = "/v1/recommendations/{user_id}"


def recommendations(
    api: Api,
    request: Request,
    user_id: Annotated[str, Path(min_length=1, max_length=128)],
    k: int,
    exclude: Annotated[list[str], Query(max_length=100, description="item ids not to return")] = [],  # noqa: B006
) -> Response:
    if any(not 1 <= len(item) <= 128 for item in exclude):
        return error_response(422, "exclude: every item id must be 1-128 characters")
    try:
        rec = api.backend.recommend(user_id, k, tuple(exclude))
    except NotOwned as exc:
        if api.backend.forwarder is None or FORWARDED_HEADER in request.headers:  # forwarded once at most
            return error_response(
                421,
                f"user {user_id!r} belongs to partition {exc.partition}, which another worker owns; "
                "send the request there",
                partition=exc.partition,
            )
        return _forward(api, request, exc.partition)
    except NotReady as exc:
        return error_response(503, f"not ready: {exc}; retry shortly", headers={"Retry-After": "1"})
    return json_response(200, rec)


def _forward(api: Api, request: Request, partition: int) -> Response:
    """The owner's answer, as it gave it; 503 if no owner answered within serving.forward_timeout_s."""
    assert api.backend.forwarder is not None
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        answer = api.backend.forwarder.forward(partition, target, request.headers)
    except NoOwner as exc:
        api.metrics.forwarded.labels("no_owner").inc()
        return error_response(503, f"{exc}; retry shortly", headers={"Retry-After": "1"}, partition=partition)
    api.metrics.forwarded.labels("answered").inc()
    return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))


def router(serving: ServingConfig) -> APIRouter:
    """The route with ``?k=`` bounded by this config, so validation and the spec carry the operator's
    ``serving.k`` and ``serving.max_k`` (a bound in a signature is fixed when the route is declared)."""
    endpoint = functools.partial(recommendations, k=Query(serving.k, ge=1, le=serving.max_k))
    endpoint.__doc__ = recommendations.__doc__  # FastAPI describes an operation by its endpoint's docstring
    routes = APIRouter(dependencies=[Depends(require_token)])
    routes.add_api_route(
        PATH,
        endpoint,
        methods=["GET"],
        name="recommendations",
        responses={200: {"content": body_of("Recommendation")}, **rejections(401, 421, 422, 503)},
        summary="The user's top-k unseen items, ranked now by the model in use (or the online learners)",
    )
    return routes
