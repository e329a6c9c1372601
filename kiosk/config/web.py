"""Web server, screens and API: what is served, to whom, and the connection discipline."""

import ipaddress

from pydantic import Field, field_validator

from ._base import Host, HostNames, PageSize, Port, Section


def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    """Each entry an IP address or network (``10.0.0.5``, ``192.168.1.0/24``, ``::1``)."""
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or network: {value!r}") from None
    return values


class WebSection(Section):
    host: Host = "127.0.0.1"
    """Address to listen on."""
    port: Port = 8000
    """TCP port (0: any free port, for tests)."""
    docs_enabled: bool = True
    """Serve /openapi.json (off in production). No Swagger UI page is ever served: it would load
    scripts from a CDN."""
    api_rate_per_min: int = Field(600, ge=1, le=100000)
    """Requests per minute per token; and per sender (an address, an IPv6 one's /64) for those
    without a valid token."""
    max_page: PageSize = 5000
    """Largest `limit` for /api/v1/events."""
    login_attempts_per_min: int = Field(5, ge=1, le=100)
    """Failed guard logins allowed per address per minute."""
    session_hours: float = Field(12, gt=0, le=168)
    """Guard session lifetime when neither a shift on the roster nor the staffed hours hold the
    sign-in (else the shift and an hour, at most 24 h: docs/screens.md)."""
    api_default_page: PageSize = 1000
    """`limit` of /api/v1/events when none is given."""
    max_request_bytes: int = Field(16384, ge=1024, le=1048576)
    """Largest request (URL plus body) the API accepts; larger gets 413/414."""
    api_worker_process: bool = True
    """Build /api/v1/events pages in a helper process, so a pull does not stall the decision loop
    (GIL, garbage collection)."""
    metrics_public: bool = True
    """Serve /metrics without a token (counts only); false needs `stats:read`."""
    mask_personal: bool = True
    """Mask phone/ID numbers unless a role needs them."""
    screen_addresses: tuple[str, ...] = Field(("127.0.0.1", "::1"), max_length=32, strict=False)
    """Client addresses whose browser is this kiosk's own screen (the kiosk page, its event stream,
    preview and direction buttons). Anyone else needs the `screen_key` credential (docs/screens.md)
    or gets 403."""
    trusted_proxies: tuple[str, ...] = Field((), max_length=32, strict=False)
    """Addresses of reverse proxies whose X-Forwarded-For/-Proto is believed. Empty (default): proxy
    headers are ignored from everyone."""
    allowed_hosts: HostNames = ()
    """Host names, besides its IP addresses, `localhost` and this machine's own name (and
    `NAME.local`), under which the kiosk is reached (`gate-01.lan`); a request naming any other
    host gets 421, so a page on another domain cannot read it by DNS rebinding (docs/network.md)."""
    tls: bool = False
    """Serve HTTPS with the `tls_cert` and `tls_key` credentials (scripts/install --tls makes a
    self-signed pair); guard cookies are then `Secure`."""
    max_connections: int = Field(256, ge=8, le=65536)
    """Open connections at once, all clients together; more are closed on accept. Also capped at
    half the process's open-file limit."""
    max_connections_per_client: int = Field(32, ge=1, le=65536)
    """Open connections at once from one client address."""
    connections_per_min: int = Field(600, ge=6, le=100000)
    """New connections a minute from one client (an IPv6 /64 together), in bursts of up to a sixth
    of it; more are closed on accept, before any TLS handshake. The kiosk's own screen
    (`screen_addresses`) and `trusted_proxies` are not limited. Keep it at least
    `api_rate_per_min`: the office's pull opens one connection per request."""
    requests_per_min: int = Field(1200, ge=6, le=1000000)
    """Requests a minute from one client (an IPv6 /64 together) to any route, in bursts of up to a
    sixth of it; more get 429 with `Retry-After`, the route not run, and their connection closed.
    The kiosk's own screen (`screen_addresses`) is not limited. Keep it above `api_rate_per_min`
    (the API's own, per token) and a guard's page loads."""
    header_timeout_s: float = Field(10.0, gt=0, le=300)
    """A connection must complete its request headers within this (from connect or the previous
    response): idle and slowloris connections are closed."""
    body_timeout_s: float = Field(30.0, gt=0, le=600)
    """A request body must arrive in full within this."""
    write_stall_s: float = Field(60.0, gt=0, le=3600)
    """A connection whose client has read nothing of a response for this long, its socket's
    buffers full (a browser tab frozen in the background holding a live stream, a client
    that stopped reading), is closed: its slot, its task and its buffers freed."""
    max_body_bytes: int = Field(1048576, ge=1024, le=67108864)
    """Largest request body any route accepts (413 before reading it)."""

    @field_validator("screen_addresses", "trusted_proxies")
    @classmethod
    def _valid_addresses(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return _addresses(values)
