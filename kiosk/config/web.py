"""Web server, screens and API."""

from pydantic import Field

from ._base import Section


class WebSection(Section):
    host: str = Field("127.0.0.1", max_length=255, description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port, for tests).")
    docs_enabled: bool = Field(
        True, description="Serve /docs and /openapi.json (off in production)."
    )
    api_rate_per_min: int = Field(
        600, ge=1, le=100000, description="Requests per minute per token and per address."
    )
    max_page: int = Field(5000, ge=1, le=100000, description="Largest `limit` for /api/v1/events.")
    login_attempts_per_min: int = Field(
        5, ge=1, le=100, description="Failed guard logins allowed per address per minute."
    )
    session_hours: float = Field(12, gt=0, le=168, description="Guard session lifetime.")
    api_default_page: int = Field(
        1000, ge=1, le=100000, description="`limit` of /api/v1/events when none is given."
    )
    max_request_bytes: int = Field(
        16384,
        ge=1024,
        le=1048576,
        description="Largest request (URL plus body) the API accepts; larger gets 413/414.",
    )
    api_worker_process: bool = Field(
        True,
        description="Build /api/v1/events pages in a helper process, so a pull does not stall"
        " the decision loop (GIL, garbage collection).",
    )
    metrics_public: bool = Field(
        True,
        description="Serve /metrics without a token (counts only); false needs `stats:read`.",
    )
    mask_personal: bool = Field(True, description="Mask phone/ID numbers unless a role needs them.")
