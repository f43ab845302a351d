"""``/healthz`` and ``/readyz``: open to kubelets (no token), cheap, and never touching Kafka."""

from fastapi import APIRouter
from fastapi.responses import Response

from serving.responses import json_response
from serving.routes.dependencies import Api

router = APIRouter()


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "not ready yet"}},
    summary="Ready when this worker owns partitions to answer for",
)
def readyz(api: Api) -> Response:
    ready, status = api.backend.readiness()
    return json_response(200 if ready else 503, {"ready": ready, **status})
