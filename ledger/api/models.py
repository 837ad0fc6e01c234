"""Request and response bodies of the HTTP API: what /openapi.json describes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ledger.domain.values import ID_PATTERN, unsafe_character
from ledger.write.commands import SCHEMAS

MAX_COMMANDS = 1000


def _identifier(value: str) -> str:
    if ID_PATTERN.fullmatch(value) is None:
        raise PydanticCustomError(
            "identifier",
            "not a valid id (letters, digits, '.', '_', ':', '-'; starts with a letter or digit; "
            "at most 64 characters)",
        )
    return value


def _storable(value: str) -> str:
    # The rule for every text the ledger stores (no NUL, controls or lone surrogates):
    # PostgreSQL refuses NUL, and a lone surrogate can be neither stored nor answered.
    problem = unsafe_character(value)
    if problem:
        raise PydanticCustomError("text", problem)
    return value


# The specification's id pattern, as the OpenAPI document states it (JSON Schema regex).
Identifier = Annotated[
    str,
    AfterValidator(_identifier),
    Field(json_schema_extra={"pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"}),
]


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


class PlanTarget(BaseModel):
    competency_id: str
    level: int
    officers: int
    achieved: int
    percent: int


class Plan(BaseModel):
    ministry_id: str
    fy: str
    min_learning_hours: float
    headcount: int
    officers_meeting_hours: int
    targets: list[PlanTarget]


class GapRow(BaseModel):
    competency_id: str
    required_officers: int
    officers_with_gap: int
    total_gap: int


class Gaps(BaseModel):
    ministry_id: str
    officers_on_posts: int
    competencies: list[GapRow]


class Health(BaseModel):
    ok: bool


class EraseRequest(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_storable)]


class Erased(BaseModel):
    officer_id: str
    erased: bool
    scrubbed: bool = Field(description="Whether the database files were also scrubbed of the key's old bytes "
                                       "(false: retry `ledger erase` later; the erasure itself is done)")


TokenName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_storable)]


class TokenRequest(BaseModel):
    name: TokenName
    role: Literal["ingest", "registrar", "officer", "ministry_hr", "cbc", "auditor", "admin"]
    ministry_id: Identifier | None = None
    officer_id: Identifier | None = None


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

_COMMAND_SCHEMA = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": sorted(SCHEMAS)},
        "command_id": {"type": "string", "minLength": 1, "maxLength": 128},
    },
    "additionalProperties": True,
    "description": "A command of the specification (fields by type; unknown fields are rejected).",
}
COMMANDS_SCHEMA: dict[str, Any] = {
    "oneOf": [
        _COMMAND_SCHEMA,
        {"type": "array", "items": _COMMAND_SCHEMA, "minItems": 1, "maxItems": MAX_COMMANDS},
    ]
}


def request_body(schema: dict[str, Any] | type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON request body the route reads itself.

    Routes read their bodies only after authorization, so FastAPI does not see a body
    parameter; this puts the schema back into the OpenAPI document.
    """
    if not isinstance(schema, dict):
        schema = schema.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
