"""
Addresses as short text for logs and C{stat()}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress


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
