"""
txgetty: getty's session / codec / event-listener network framework, built
natively on Twisted.

A packet protocol is an L{EventListener} plus a codec, served by a
L{Server}::

    from txgetty import EventListener, HelloCodec, Server

    class Echo(EventListener):
        def onMessage(self, session, pkg):
            session.writePkg(pkg)

    def newSession(session):
        session.codec = HelloCodec()
        session.listener = Echo()

    server = Server(["tcp:8090:interface=127.0.0.1"], newSession)
    server.setServiceParent(application)   # or server.startService()
"""

from ._version import __version__
from .client import Client, ReconnectPolicy, connect
from .codec import (
    DelimiterCodec,
    HelloCodec,
    LengthPrefixedCodec,
    LineCodec,
    RawCodec,
    codecFromString,
)
from .config import SessionConfig
from .errors import (
    CodecError,
    ConfigError,
    ConnectGaveUpError,
    ConnectTimeoutError,
    ConnectionClosedLocally,
    DatagramTooLargeError,
    DeadPeerError,
    FirstPacketTimeoutError,
    NoSessionError,
    OpenTimeoutError,
    OutboundOverflowError,
    PacketTimeoutError,
    PacketTooLargeError,
    PeerIdleError,
    ReadIdleTimeoutError,
    SelfConnectError,
    SessionClosedError,
    SessionRefusedError,
    SessionTimeoutError,
    TaskPoolError,
    TLSHandshakeError,
    TruncatedPacketError,
    TxGettyError,
    WebSocketClosedError,
    WriteTimeoutError,
)
from .handlers import EchoListener, EventListener
from .interfaces import (
    IClient,
    ICodec,
    IEventListener,
    IReader,
    IServer,
    ISession,
    ITaskPool,
    ITimerWheel,
    IWriter,
)
from .server import Server, serve
from .session import Session
from .taskpool import TaskPool
from .transports.tls import TLSClientSettings, TLSServerSettings
from .wheel import TimerWheel

__all__ = [
    "__version__",
    "Client",
    "CodecError",
    "ConfigError",
    "ConnectGaveUpError",
    "ConnectTimeoutError",
    "ConnectionClosedLocally",
    "DatagramTooLargeError",
    "DeadPeerError",
    "DelimiterCodec",
    "EchoListener",
    "EventListener",
    "FirstPacketTimeoutError",
    "HelloCodec",
    "IClient",
    "ICodec",
    "IEventListener",
    "IReader",
    "IServer",
    "ISession",
    "ITaskPool",
    "ITimerWheel",
    "IWriter",
    "LengthPrefixedCodec",
    "LineCodec",
    "NoSessionError",
    "OpenTimeoutError",
    "OutboundOverflowError",
    "PacketTimeoutError",
    "PacketTooLargeError",
    "PeerIdleError",
    "RawCodec",
    "ReadIdleTimeoutError",
    "ReconnectPolicy",
    "SelfConnectError",
    "Server",
    "Session",
    "SessionClosedError",
    "SessionConfig",
    "SessionRefusedError",
    "SessionTimeoutError",
    "TLSClientSettings",
    "TLSHandshakeError",
    "TLSServerSettings",
    "TaskPool",
    "TaskPoolError",
    "TimerWheel",
    "TruncatedPacketError",
    "TxGettyError",
    "WebSocketClosedError",
    "WriteTimeoutError",
    "codecFromString",
    "connect",
    "serve",
]
