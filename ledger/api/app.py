"""The FastAPI application: commands in, read models out, by role.

Roles (deny by default): ``ingest`` may only POST /commands; ``officer`` reads its
own record, competencies and history; ``ministry_hr`` reads officers currently
posted under its ministry and that ministry's aggregates; ``cbc`` reads every
ministry's aggregates and no individual; ``auditor`` reads everything, including
history and status; ``admin`` manages erasure and tokens. An officer's access log
(who read their data) is the officer's own and the auditors'. Every response carrying an
officer's personal data or history leaves one entry in the append-only access log.

The routes live in ``ledger.api.routes``, authentication and authorization in
``ledger.api.deps``, the bodies in ``ledger.api.models``; this module only builds the
per-process services, installs the error handlers and includes the routers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from ledger.api import lean, observe
from ledger.api.body import safe_text, validation_message
from ledger.api.deps import Services
from ledger.api.routes import access_log, admin, commands, credentials, health, ministries, officers
from ledger.config import Settings
from ledger.monitor.collector import export_status
from ledger.ops.metrics import REGISTRY


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": validation_message(errors)}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": safe_text(str(exc.detail))}, status_code=exc.status_code, headers=exc.headers)


class LedgerAPI(FastAPI):
    """The FastAPI app, with ``POST /commands`` and ``GET /healthz`` answered by plain ASGI
    (``ledger.api.lean``) in front of it; their FastAPI routes stay declared for the OpenAPI document."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lean = {"/commands": observe.Observe(lean.post_commands), "/healthz": observe.Observe(lean.get_healthz)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (path := lean.lean_path(scope)) is not None:
            scope["app"] = self
            await self._lean[path](scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, project: bool | None = None, token_ttl: float = 2.0) -> FastAPI:
    """The API for these settings.

    ``project``: follow the store in-process (default in embedded mode); ``token_ttl``:
    seconds an authentication result is reused (a revocation takes at most that long).
    """
    follow = (not settings.kafka_bootstrap) if project is None else project

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = Services(settings, follow, token_ttl)
        # GET /metrics shows the positions and lags of `ledger status` (all of them: relay and projections).
        status = export_status(app.state.services.ledger, settings, "api")
        try:
            yield
        finally:
            REGISTRY.unregister(status)
            app.state.services.close()

    app = LedgerAPI(
        title="Learning-record ledger",
        version="0.1.0",
        description="Commands and queries of the learning-record ledger, by role. "
        "Authenticate with `Authorization: Bearer <token>` (`ledger token create`).",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry hooks asked the environment for a tracer on every
        # request; the ledger's metrics are its own (observe.Observe, GET /metrics).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(observe.Observe)  # durations by route template, request ids
    for router in (commands.router, officers.router, access_log.router, ministries.router, health.router,
                   admin.router, credentials.router, observe.router):
        app.include_router(router)
    from ledger.console.routes import router as console  # the reviewers' pages at /console

    app.include_router(console)
    from ledger.api.routes import xapi  # the xAPI Learning Record Store at /xapi

    app.mount("/xapi", xapi.build(app))
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from the environment."""
    import os

    from ledger.ops.logs import configure

    configure("api")  # a worker process of its own: its logs as LEDGER_LOG_FORMAT says
    flag = os.environ.get("LEDGER_SERVE_PROJECT")
    return create_app(Settings.from_env(), None if flag is None else flag == "1")
