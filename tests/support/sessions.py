"""
Sessions on fake transports and servers on a fake reactor, for unit tests.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from txgetty.codec import HelloCodec
from txgetty.handlers import EchoListener
from txgetty.server import Server


def echoSession(session: Any) -> None:
    """
    A new-session callback: hello framing, echo.

    @param session: the new session.
    """
    session.codec = HelloCodec()
    session.listener = EchoListener()


def serverOn(reactor: Any, endpoints: list[str], newSession: Any = echoSession, **kw: Any) -> Server:
    """
    @param reactor: a memory reactor.
    @param endpoints: the listeners.
    @param newSession: the callback.
    @param kw: other L{Server} arguments.
    @return: a started server.
    """
    server = Server(endpoints, newSession, reactor=reactor, **kw)
    server.startService()
    return server


class HalfClosingTransport(StringTransport):
    """
    A string transport that can close its write side, as TCP's can.

    @ivar writeClosed: whether C{loseWriteConnection} was called.
    """

    writeClosed = False

    def loseWriteConnection(self) -> None:
        """
        Close the write side.
        """
        self.writeClosed = True


def accept(reactor: MemoryReactorClock, index: int = 0, port: int = 40000) -> tuple[Any, HalfClosingTransport]:
    """
    Let the memory reactor's listener C{index} accept one connection.

    @return: the protocol it built (a session or a refusal) and its
        transport.
    """
    factory = reactor.tcpServers[index][1]
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
    transport = HalfClosingTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
    protocol.makeConnection(transport)
    return protocol, transport
