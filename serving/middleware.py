"""ASGI middleware: request latency by route template (never by raw path: no ids as labels)."""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import ServingMetrics


class RequestTimer:
    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
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
