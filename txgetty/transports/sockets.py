"""
What lies under a Twisted transport: the socket, and the bytes handed to it
that the kernel has not taken yet.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.protocols.policies import ProtocolWrapper


def socketOf(transport: Any) -> socket.socket | None:
    """
    @param transport: a transport, perhaps wrapped (TLS).
    @return: the socket under it, or C{None}.
    """
    while isinstance(transport, ProtocolWrapper):
        transport = transport.transport
    handle = getattr(transport, "getHandle", lambda: None)()
    return handle if isinstance(handle, socket.socket) else None


def transportBacklog(transport: Any) -> int:
    """
    Bytes handed to a transport and not yet sent to the kernel.

    @param transport: a Twisted transport (TCP/UNIX, TLS-wrapped or not), a
        L{txgetty.testing.LoopbackTransport}, or anything else (counted as 0).
    @return: the number of bytes waiting.
    """
    total = 0
    while hasattr(transport, "underlyingTransport"):
        transport = transport.underlyingTransport
    while isinstance(transport, ProtocolWrapper):
        total += sum(len(b) for b in getattr(transport, "_appSendBuffer", ()))
        transport = transport.transport
    # Twisted's FileDescriptor has no public count of its unsent bytes: the
    # bytes of writes not yet joined into dataBuffer are _tempDataLen (the
    # hasattr keeps another Twisted working: its transport counts as 0).
    if hasattr(transport, "_tempDataLen"):
        total += len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    elif hasattr(transport, "outgoing"):
        total += sum(len(b) for b in transport.outgoing)
    return total
