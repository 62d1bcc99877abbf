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
    FirstPacketTimeoutError,
    OpenTimeoutError,
    PacketTimeoutError,
    PacketTooLargeError,
    NoSessionError,
    ReadIdleTimeoutError,
    SelfConnectError,
    SessionClosedError,
    SessionRefusedError,
    SessionTimeoutError,
    TLSHandshakeError,
    TruncatedPacketError,
    TxGettyError,
    WriteTimeoutError,
)
from .interfaces import (
    IClient,
    ICodec,
    IEventListener,
    IReader,
    IServer,
    ISession,
    ITimerWheel,
    IWriter,
)
from .handlers import EchoListener, EventListener
from .server import Server, serve
from .session import Session
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
    "ITimerWheel",
    "IWriter",
    "LengthPrefixedCodec",
    "LineCodec",
    "OpenTimeoutError",
    "NoSessionError",
    "PacketTimeoutError",
    "PacketTooLargeError",
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
    "TLSHandshakeError",
    "TLSClientSettings",
    "TLSServerSettings",
    "TruncatedPacketError",
    "TimerWheel",
    "TxGettyError",
    "WriteTimeoutError",
    "codecFromString",
    "connect",
    "serve",
]
