"""The FastAPI application: commands in, read models out, by role.

Roles (deny by default): ``ingest`` may only POST /commands; ``officer`` reads its
own record, competencies and history; ``ministry_hr`` reads officers currently
posted under its ministry and that ministry's aggregates; ``cbc`` reads every
ministry's aggregates and no individual; ``auditor`` reads everything, including
history and status; ``admin`` manages erasure. Every response carrying an officer's
personal data or history leaves one entry in the append-only access log.
"""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from ledger.api import auth
from ledger.api.auth import Principal
from ledger.api.committer import GroupCommitter
from ledger.config import Settings
from ledger.db import Database
from ledger.domain.errors import LedgerError
from ledger.domain.values import ID_PATTERN, parse_instant

MAX_BODY = 1024 * 1024
MAX_COMMANDS = 1000
READ_ROLES = {"officer", "ministry_hr", "auditor"}


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(BaseModel):
    detail: str


class CommandResult(BaseModel):
    index: int
    status: str
    error: str | None = None


class Record(Model):
    officer_id: str
    name: str | None
    email: str | None
    org_id: str | None
    ministry_id: str | None
    post_id: str | None
    postings: list[dict[str, Any]]
    enrolments: list[dict[str, Any]]
    completed_count: int
    learning_hours: float
    learning_hours_by_year: dict[str, float]


class Competencies(Model):
    officer_id: str
    post_id: str | None
    required: dict[str, int]
    acquired: dict[str, int]
    gaps: dict[str, int]
    recommended: list[str]


class Ministry(Model):
    ministry_id: str
    headcount: int
    years: dict[str, dict[str, int | float]]


class Health(BaseModel):
    ok: bool


class EraseRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class Erased(BaseModel):
    officer_id: str
    erased: bool


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["ingest", "officer", "ministry_hr", "cbc", "auditor", "admin"]
    ministry_id: str | None = None
    officer_id: str | None = None


class NewToken(BaseModel):
    name: str
    role: str
    token: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Malformed request"},
    401: {"model": Error, "description": "No valid bearer token"},
    403: {"model": Error, "description": "Outside the token's role"},
    404: {"model": Error, "description": "Not found"},
    413: {"model": Error, "description": "Body too large"},
    422: {"model": Error, "description": "Invalid input"},
}


class State:
    """Per-process resources: the ledger, thread-local database handles, the committer."""

    def __init__(self, settings: Settings, project: bool, token_ttl: float = 2.0) -> None:
        from ledger.application import Ledger

        self.settings = settings
        self.ledger = Ledger(settings)
        self._local = threading.local()
        auth.ensure_tables(self.db())
        self.tokens = auth.TokenCache(Database(settings), token_ttl)
        self.committer = GroupCommitter(self.ledger)
        self.follower: Any = None
        if project:
            from ledger.consumers.log import LogFollower
            from ledger.projections.runner import Runner

            self.follower = LogFollower(self.ledger, Runner(Database(settings)), poll_interval=0.1)
            threading.Thread(target=self.follower.run, name="projections", daemon=True).start()

    def db(self) -> Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = Database(self.settings)
        return db

    def reads(self) -> Any:
        from ledger.readmodels import ReadModels

        reads = getattr(self._local, "reads", None)
        if reads is None:
            reads = self._local.reads = ReadModels(self.db(), self.ledger)
        return reads

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop.set()
        self.committer.close()


def create_app(settings: Settings, project: bool | None = None, token_ttl: float = 2.0) -> FastAPI:
    """The API for these settings.

    ``project``: follow the store in-process (default in embedded mode); ``token_ttl``:
    seconds an authentication result is reused (a revocation takes at most that long).
    """
    follow = (not settings.kafka_bootstrap) if project is None else project
    holder: dict[str, State] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        holder["state"] = State(settings, follow, token_ttl)
        yield
        holder["state"].close()

    app = FastAPI(
        title="Learning-record ledger",
        version="0.1.0",
        description="Commands and queries of the learning-record ledger, by role. "
        "Authenticate with `Authorization: Bearer <token>` (`ledger token create`).",
        lifespan=lifespan,
    )
    bearer = HTTPBearer(auto_error=False)

    def state() -> State:
        return holder["state"]

    async def principal(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
        if creds is None or creds.scheme.lower() != "bearer":
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        found = state().tokens.get(creds.credentials)
        if found is None:
            raise HTTPException(401, "the token is not valid or was revoked", headers={"WWW-Authenticate": "Bearer"})
        return found

    def check_id(value: str, field: str) -> None:
        if not ID_PATTERN.match(value):
            raise HTTPException(422, f"{field}: {value!r} is not a valid id")

    def officer_scope(who: Principal, officer_id: str) -> dict[str, Any]:
        """The officer's current record if ``who`` may read it; else 403/404."""
        check_id(officer_id, "officer_id")
        if who.role not in READ_ROLES:
            raise HTTPException(403, f"role {who.role} may not read officers")
        if who.role == "officer" and who.officer_id != officer_id:
            raise HTTPException(403, "an officer token reads only its own officer")
        current: dict[str, Any] | None = state().reads().record(officer_id)
        if current is None:
            raise HTTPException(404, f"officer {officer_id!r} is not registered")
        if who.role == "ministry_hr" and current["ministry_id"] != who.ministry_id:
            raise HTTPException(403, f"officer {officer_id!r} is not posted under ministry {who.ministry_id}")
        return current

    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ["body"], "msg": "invalid"}
        field = ".".join(str(p) for p in first.get("loc", []) if p != "body") or "body"
        return JSONResponse({"detail": f"{field}: {first.get('msg')}"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    from ledger.commands import SCHEMAS

    command_schema = {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": sorted(SCHEMAS)},
            "command_id": {"type": "string", "minLength": 1, "maxLength": 128},
        },
        "additionalProperties": True,
        "description": "A command of the specification (fields by type; unknown fields are rejected).",
    }
    body_schema = {
        "oneOf": [command_schema, {"type": "array", "items": command_schema, "minItems": 1, "maxItems": MAX_COMMANDS}]
    }

    @app.post("/commands", response_model=list[CommandResult], responses={**ERRORS, 503: {"model": Error}},
              summary="Apply one command or an array of commands",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}}})
    async def post_commands(request: Request, who: Principal = Depends(principal)) -> Any:
        """Each command is answered accepted, duplicate or rejected (with the field named).

        The `command_id` is the idempotency key. The answer comes once the commands are
        durable; concurrent requests share transactions (group commit).
        """
        if who.role != "ingest":
            raise HTTPException(403, f"role {who.role} may not send commands")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            raise HTTPException(413, f"body: larger than {MAX_BODY} bytes")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"body: larger than {MAX_BODY} bytes")
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"body: malformed JSON ({exc})") from None
        commands = payload if isinstance(payload, list) else [payload]
        if not commands or len(commands) > MAX_COMMANDS:
            raise HTTPException(422, f"body: send 1..{MAX_COMMANDS} commands")
        if not all(isinstance(c, dict) for c in commands):
            raise HTTPException(422, "body: each command must be a JSON object")
        lines = [json.dumps(c) for c in commands]
        try:
            outcomes = await asyncio.wrap_future(state().committer.submit(lines))
        except Exception as exc:
            raise HTTPException(503, f"the event store is unavailable: {type(exc).__name__}") from None
        return [CommandResult(index=i, status=o.status, error=o.error) for i, o in enumerate(outcomes)]

    @app.get("/officers/{officer_id}/record", response_model=Record, responses=ERRORS)
    def get_record(officer_id: str, as_of: str | None = None, who: Principal = Depends(principal)) -> Any:
        """The learning record (now, or `as_of` an ISO 8601 instant)."""
        result: dict[str, Any] | None = officer_scope(who, officer_id)
        if as_of is not None:
            try:
                when = parse_instant(as_of, "as_of")
            except LedgerError as exc:
                raise HTTPException(422, str(exc)) from None
            result = state().ledger.record(officer_id, when)
            if result is None:
                raise HTTPException(404, f"officer {officer_id!r} was not registered as of {as_of}")
        auth.log_access(state().db(), who, officer_id, "record")
        return result

    @app.get("/officers/{officer_id}/competencies", response_model=Competencies, responses=ERRORS)
    def get_competencies(officer_id: str, who: Principal = Depends(principal)) -> Any:
        """The competency profile against the current post's FRAC needs."""
        officer_scope(who, officer_id)
        profile = state().reads().competency_profile(officer_id)
        if profile is None:
            raise HTTPException(404, f"officer {officer_id!r} is not in the read model")
        return profile

    @app.get("/officers/{officer_id}/history", response_model=list[dict[str, Any]], responses=ERRORS)
    def get_history(officer_id: str, who: Principal = Depends(principal)) -> Any:
        """The officer's events in order, with business and recorded time."""
        officer_scope(who, officer_id)
        events = state().ledger.history(officer_id)
        auth.log_access(state().db(), who, officer_id, "history")
        return events

    @app.get("/ministries/{ministry_id}", response_model=Ministry, responses=ERRORS)
    def get_ministry(ministry_id: str, who: Principal = Depends(principal)) -> Any:
        """Headcount and per-financial-year aggregates of a ministry."""
        check_id(ministry_id, "ministry_id")
        if who.role not in ("ministry_hr", "cbc", "auditor"):
            raise HTTPException(403, f"role {who.role} may not read ministry aggregates")
        if who.role == "ministry_hr" and who.ministry_id != ministry_id:
            raise HTTPException(403, f"a ministry_hr token reads only ministry {who.ministry_id}")
        found = state().reads().ministry(ministry_id)
        if found is None:
            raise HTTPException(404, f"ministry {ministry_id!r} is not in the read model")
        return found

    @app.get("/status", response_model=dict[str, Any], responses=ERRORS)
    def get_status(who: Principal = Depends(principal)) -> Any:
        """Lag and health of the relay and projections."""
        if who.role not in ("auditor", "admin"):
            raise HTTPException(403, f"role {who.role} may not read status")
        from ledger.status import collect

        return collect(state().ledger, settings)

    def admin_only(who: Principal) -> None:
        if who.role != "admin":
            raise HTTPException(403, f"role {who.role} may not administer the ledger")

    @app.post("/officers/{officer_id}/erase", response_model=Erased, responses=ERRORS)
    def erase_officer(officer_id: str, body: EraseRequest, who: Principal = Depends(principal)) -> Any:
        """DPDP erasure: destroy the officer's data key and record OfficerErased."""
        admin_only(who)
        check_id(officer_id, "officer_id")
        try:
            state().ledger.erase(officer_id, body.reason)
        except LedgerError as exc:
            code = 404 if "not registered" in str(exc) else 422
            raise HTTPException(code, str(exc)) from None
        return {"officer_id": officer_id, "erased": True}

    @app.post("/tokens", response_model=NewToken, responses=ERRORS)
    def post_token(body: TokenRequest, who: Principal = Depends(principal)) -> Any:
        """Create a token (shown once in this response)."""
        admin_only(who)
        try:
            token = auth.create_token(state().db(), body.name, body.role, body.ministry_id, body.officer_id)
        except LedgerError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"name": body.name, "role": body.role, "token": token}

    @app.delete("/tokens/{name}", response_model=Health, responses=ERRORS)
    def delete_token(name: str, who: Principal = Depends(principal)) -> Any:
        """Revoke a token by name."""
        admin_only(who)
        try:
            auth.revoke_token(state().db(), name)
        except LedgerError as exc:
            raise HTTPException(404, str(exc)) from None
        return {"ok": True}

    @app.get("/healthz", response_model=Health)
    def healthz() -> Any:
        """Liveness: the process answers (no authentication)."""
        return {"ok": True}

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from the environment."""
    import os

    flag = os.environ.get("LEDGER_SERVE_PROJECT")
    return create_app(Settings.from_env(), None if flag is None else flag == "1")
