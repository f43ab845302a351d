"""``GET /metrics``: the Prometheus exposition of the serving registry (open: scrapers carry no token)."""

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving.routes.dependencies import Api

router = APIRouter()


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus_metrics(api: Api) -> Response:
    return Response(generate_latest(api.metrics.registry), media_type=CONTENT_TYPE_LATEST)
