"""`create_app(settings)`: the ASGI application, its routes and its lifespan."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import Route

from gateway.telemetry import configure_telemetry, metrics_endpoint
from gateway.web.admin import admin_routes
from gateway.web.cors import cors_middleware
from gateway.web.gctuning import tune_gc_after_startup
from gateway.web.health import healthz, readyz
from gateway.web.http import graphql_endpoint
from gateway.web.notices import notice_endpoint
from gateway.web.pages import development_routes
from gateway.web.runtime import open_runtime
from gateway.web.sdl import schema_endpoint

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.middleware import Middleware
    from starlette.types import ASGIApp, Receive, Scope, Send

    from gateway.settings import Settings

__all__ = ["create_app"]


class _Gateway(Starlette):
    """Starlette, with `POST /graphql` handed straight to its endpoint.

    Every other request takes Starlette's whole stack. For `POST /graphql` that stack
    (server-error and exception middleware, the router, its route) does nothing the
    endpoint needs: the endpoint answers every exception itself, raises no
    `HTTPException`, and reads no path parameters. Only CORS, when configured, applies
    to it as it would in the stack.
    """

    def __init__(self, *, graphql: ASGIApp, middleware: list[Middleware],
                 **kwargs: object) -> None:
        super().__init__(middleware=middleware, **kwargs)  # type: ignore[arg-type]
        for cls, args, options in reversed(middleware):
            graphql = cls(graphql, *args, **options)
        self._graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" \
                and scope["path"] == "/graphql" and not scope.get("root_path"):
            scope["app"] = self
            await self._graphql(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings) -> Starlette:
    """The gateway app; resources open on startup and close on shutdown (lifespan)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_telemetry(settings)
        async with open_runtime(settings) as runtime:
            app.state.runtime = runtime
            tune_gc_after_startup(settings.runtime)
            yield

    routes = [
        Route("/graphql", graphql_endpoint, methods=["GET", "POST"], name="graphql_endpoint"),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/notices/{connector}", notice_endpoint, methods=["POST"]),
        Route("/schema.graphql", schema_endpoint, methods=["GET"]),  # token needed in production
    ]
    routes += admin_routes(settings)  # /admin/connectors: only with [registry] dir
    if settings.telemetry.metrics:  # Prometheus text format; never a child's data in a label
        routes.append(Route("/metrics", metrics_endpoint(settings.telemetry), methods=["GET"]))
    if settings.development:  # GraphiQL's assets, the example dashboard: never in production
        routes += development_routes(settings)
    return _Gateway(routes=routes, lifespan=lifespan, graphql=graphql_endpoint,
                    middleware=cors_middleware(settings.http))
