"""
Addresses: as short text for logs and C{stat()}, and the port numbers of
endpoint descriptions.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from ..errors import ConfigError


def formatAddress(address: Any) -> str:
    """
    @param address: an L{IAddress <twisted.internet.interfaces.IAddress>} or C{None}.
    @return: C{tcp:127.0.0.1:8090}, C{tcp:[::1]:8090}, C{udp:...},
        C{unix:/path}, or C{repr()} of anything else.
    """
    if address is None:
        return "-"
    if isinstance(address, IPv4Address):
        return f"{address.type.lower()}:{address.host}:{address.port}"
    if isinstance(address, IPv6Address):
        return f"{address.type.lower()}:[{address.host}]:{address.port}"
    if isinstance(address, UNIXAddress):
        name: bytes | str | None = address.name
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return f"unix:{name or '(unnamed)'}"
    return repr(address)


def checkPort(text: Any, description: str, listening: bool) -> int:
    """
    @param text: a port number as given (text or int).
    @param description: the endpoint it came from, for the message.
    @param listening: C{True} for a listener (0 picks a free port),
        C{False} for an address to connect to.
    @return: the port number.
    @raise ConfigError: it is not a number in range; the message says which
        range.
    """
    low = 0 if listening else 1
    try:
        port = int(text)
    except (TypeError, ValueError):
        port = None
    if port is None or not low <= port <= 65535:
        hint = "0-65535 (0: any free port)" if listening else "1-65535"
        raise ConfigError(f"the port of {description!r} must be a number {hint}, got {text!r}")
    return port
