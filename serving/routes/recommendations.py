"""``GET /v1/recommendations/{user_id}``: the user's top-k, from the worker that owns their state."""

import functools
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from serving.backend import NotOwned, NotReady
from serving.responses import body_of, error_response, json_response, rejections
from serving.routes.dependencies import Api, require_token
from stream.config import ServingConfig

PATH = "/v1/recommendations/{user_id}"


def recommendations(
    api: Api,
    user_id: Annotated[str, Path(min_length=1, max_length=128)],
    k: int,
    exclude: Annotated[list[str], Query(max_length=100, description="item ids not to return")] = [],  # noqa: B006
) -> Response:
    if any(not 1 <= len(item) <= 128 for item in exclude):
        return error_response(422, "exclude: every item id must be 1-128 characters")
    try:
        rec = api.backend.recommend(user_id, k, tuple(exclude))
    except NotOwned as exc:
        return error_response(
            421,
            f"user {user_id!r} belongs to partition {exc.partition}, which another worker owns; send the request there",
            partition=exc.partition,
        )
    except NotReady as exc:
        return error_response(503, f"not ready: {exc}; retry shortly")
    return json_response(200, rec)


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
