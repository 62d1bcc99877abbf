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
    ConnectionClosedLocally,
    OpenTimeoutError,
    PacketTimeoutError,
    PacketTooLargeError,
    ReadIdleTimeoutError,
    SessionClosedError,
    SessionRefusedError,
    SessionTimeoutError,
    TLSHandshakeError,
    TruncatedPacketError,
    TxGettyError,
)
from .interfaces import (
    ICodec,
    IEventListener,
    IReader,
    IServer,
    ISession,
    ITimerWheel,
    IWriter,
)
from .listener import EchoListener, EventListener
from .server import Server, serve
from .session import Session
from .tls import TLSServerSettings
from .wheel import TimerWheel

__all__ = [
    "__version__",
    "CodecError",
    "ConfigError",
    "ConnectionClosedLocally",
    "DelimiterCodec",
    "EchoListener",
    "EventListener",
    "HelloCodec",
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
    "PacketTimeoutError",
    "PacketTooLargeError",
    "RawCodec",
    "ReadIdleTimeoutError",
    "Server",
    "Session",
    "SessionClosedError",
    "SessionConfig",
    "SessionRefusedError",
    "SessionTimeoutError",
    "TLSHandshakeError",
    "TLSServerSettings",
    "TruncatedPacketError",
    "TimerWheel",
    "TxGettyError",
    "codecFromString",
    "serve",
]
