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


def unsentBytes(fd: Any) -> int:
    """
    Bytes a Twisted L{FileDescriptor <twisted.internet.abstract.FileDescriptor>}
    holds and has not sent yet.

    @param fd: a TCP or UNIX transport (a C{FileDescriptor}).
    @return: the bytes in its write buffer.
    """
    # Twisted's FileDescriptor has no public count of its unsent bytes: the
    # bytes of writes not yet joined into dataBuffer are _tempDataLen.  This
    # is the one place txgetty reads it.
    return len(fd.dataBuffer) - fd.offset + fd._tempDataLen


def writeThrough(transport: Any, data: bytes) -> None:
    """
    Write to a TCP or UNIX socket transport: when nothing waits in its
    buffer, send at once, as asyncio's and uvloop's transports do, rather
    than one reactor turn later (the turn costs two C{epoll_ctl} and one more
    C{epoll_wait} per reply of a ping-pong); what the kernel does not take
    goes to the transport's buffer, as with C{write}.

    @param transport: a L{twisted.internet.tcp.Connection}.
    @param data: the bytes.
    """
    if transport.connected and not transport.disconnecting and not unsentBytes(transport):
        try:
            sent = transport.socket.send(data)
        except OSError:
            # EAGAIN, or an error (a reset, a socket shut for writing) that
            # Twisted's own write then meets and reports (or drops, as it
            # does after loseWriteConnection).
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


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
    # (The hasattr keeps another Twisted working: its transport counts as 0.)
    if hasattr(transport, "_tempDataLen"):
        total += unsentBytes(transport)
    elif hasattr(transport, "outgoing"):
        total += sum(len(b) for b in transport.outgoing)
    return total
