"""Which ``Host`` a server of the project answers to: the defence against DNS rebinding.

A page on another domain whose name is made to resolve to a kiosk (or to the office's
collector) is, to the browser, that server's own origin: its scripts read the answers. Its
requests still carry its own name as ``Host``. So each server answers only a ``Host`` that is
an IP address (a page whose origin is an address is the server itself), ``localhost``, this
machine's name (and ``NAME.local``), or a name its config lists (``allowed_hosts``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

from kiosk.typed import whole_number

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def host_names(values: Iterable[str]) -> tuple[str, ...]:
    """A config's ``allowed_hosts``: each a host name (``gate-01.lan``) or an IP address,
    lower-cased, without a trailing dot; ``ValueError`` naming the first that is neither."""
    names = []
    for value in values:
        name = value.strip().lower()
        if not _HOST_NAME.fullmatch(name) and not is_ip(name.strip("[]")):
            raise ValueError(
                f"not a host name: {value!r} (a name alone, e.g. gate-01.lan:"
                " no scheme, port or path)"
            )
        names.append(name.rstrip("."))
    return tuple(names)


def own_host_names(allowed: Iterable[str] = ()) -> frozenset[str]:
    """The names a server here answers to: ``localhost``, this machine's name (as set, and
    its first label: ``gate-1`` of ``gate-1.compound.lan``) and ``NAME.local`` (mDNS names
    the first label), and ``allowed``. Any IP address is answered too (``host_is_ours``)."""
    me = socket.gethostname().lower().rstrip(".")
    short = me.split(".", 1)[0]
    listed = (name.lower().rstrip(".") for name in allowed)
    return frozenset({"localhost", me, short, f"{short}.local", *listed})


def host_is_ours(host: str, names: frozenset[str]) -> bool:
    """Whether a ``Host`` header (``name``, ``name:port``, ``[v6]:port``) names this server:
    an IP address, or one of ``names`` (``own_host_names``)."""
    host = host.strip().lower()
    if host.startswith("["):
        literal, _, _ = host[1:].partition("]")
        return is_ip(literal)
    name, colon, port = host.rpartition(":")
    if not colon or whole_number(port) is None:
        name = host
    name = name.rstrip(".")
    return is_ip(name) or name in names


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
