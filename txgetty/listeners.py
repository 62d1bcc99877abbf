"""
What a server listens on, by kind of description:

  - stream endpoints (C{tcp:}, C{tcp6:}, C{unix:}, C{tls:}/C{ssl:}, any
    Twisted endpoint string): a session per connection;
  - C{udp:PORT[:interface=ADDR][:maxPeers=N]}: a session per peer address;
  - C{ws://HOST:PORT/PATH} and C{wss://...} (options in the query:
    C{allowedOrigins}, C{deflate}, C{static}): a session per WebSocket; the
    paths given for one port share it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from .datagram import MAX_DATAGRAM, UDPServerProtocol, parseUDP
from .addresses import formatAddress
from .endpoints import parseWebSocketURL, serverEndpoint, splitDescription
from .errors import ConfigError
from .tls import TLSServerSettings


class _SessionFactory(Factory):
    """
    Makes a session per accepted connection of a stream listener.
    """

    noisy = False

    def __init__(self, server: Any) -> None:
        """
        @param server: the server owning the sessions.
        """
        self.server = server

    def buildProtocol(self, addr: Any) -> Any:
        """
        @param addr: the peer's address.
        @return: a new session, registered with the server.
        """
        return self.server._newSessionFor(addr)


class StreamListener:
    """
    A stream endpoint.

    @ivar description: the text it came from.
    """

    def __init__(self, description: str, endpoint: IStreamServerEndpoint) -> None:
        """
        @param description: the text it came from.
        @param endpoint: the endpoint.
        """
        self.description = description
        self.endpoint = endpoint

    def listen(self, server: Any) -> Deferred:
        """
        @param server: the server.
        @return: a L{Deferred} firing with the listening port.
        """
        return self.endpoint.listen(_SessionFactory(server))

    def label(self, address: Any) -> str:
        """
        @param address: the bound address.
        @return: how to name it in logs.
        """
        return formatAddress(address)


class UDPListener:
    """
    A UDP port.

    @ivar description: the text it came from.
    @ivar protocol: the port's protocol (its C{peers}, C{dropped} and
        C{oversize} counters), once listening.
    """

    def __init__(self, reactor: Any, description: str) -> None:
        """
        @param reactor: the reactor.
        @param description: C{udp:PORT[:interface=ADDR][:maxPeers=N]}.
        @raise ConfigError: the description is wrong.
        """
        _, args, kw = splitDescription(description)
        self.port, self.interface, self.maxPeers = parseUDP(description, args, kw)
        self.reactor = reactor
        self.description = description
        self.protocol: UDPServerProtocol | None = None

    def listen(self, server: Any) -> Deferred:
        """
        @param server: the server.
        @return: a L{Deferred} firing with the UDP port.
        """
        maxDatagram = min(server.config.maxMsgLen, MAX_DATAGRAM)
        self.protocol = UDPServerProtocol(server, self.description, self.maxPeers, maxDatagram)
        return maybeDeferred(
            self.reactor.listenUDP, self.port, self.protocol, interface=self.interface,
            maxPacketSize=maxDatagram + 1,
        )

    def label(self, address: Any) -> str:
        """
        @param address: the bound address.
        @return: how to name it in logs.
        """
        return formatAddress(address)


class WebSocketListener:
    """
    A WebSocket port with one or more paths.

    @ivar description: the texts it came from.
    """

    def __init__(self, reactor: Any, secure: bool, host: str, port: int, tls: TLSServerSettings | None) -> None:
        """
        @param reactor: the reactor.
        @param secure: C{wss}.
        @param host: the interface to listen on.
        @param port: the port.
        @param tls: the TLS files, for C{wss}.
        @raise ConfigError: C{wss} without TLS files.
        """
        if secure and tls is None:
            raise ConfigError("a wss:// listener needs TLS files: give --tls-key and --tls-cert")
        self.reactor = reactor
        self.secure = secure
        self.host = host
        self.port = port
        self.tls = tls
        self.paths: list[str] = []
        self.options: dict[str, str] = {}
        self.descriptions: list[str] = []

    @property
    def description(self) -> str:
        """
        The WebSocket URLs served on this port.
        """
        return ", ".join(self.descriptions)

    def add(self, description: str, path: str, options: dict[str, str]) -> None:
        """
        @param description: a URL for this port.
        @param path: its path.
        @param options: its options (they apply to the whole port).
        @raise ConfigError: the path is given twice.
        """
        if path in self.paths:
            raise ConfigError(f"the WebSocket path {path!r} is given twice for port {self.port}")
        self.paths.append(path)
        self.options.update(options)
        self.descriptions.append(description)

    def listen(self, server: Any) -> Deferred:
        """
        @param server: the server.
        @return: a L{Deferred} firing with the listening port.
        """
        try:
            from .websocket import WebSocketSite  # autobahn only for WebSocket servers

            site = WebSocketSite(server, self.secure, self.paths, dict(self.options))
        except ConfigError:
            return fail(Failure())
        interface = "" if self.host in ("0.0.0.0", "") else self.host
        if self.secure:
            assert self.tls is not None  # __init__ refuses wss without TLS files
            endpoint: Any = SSL4ServerEndpoint(self.reactor, self.port, self.tls.options(), interface=interface)
        else:
            endpoint = TCP4ServerEndpoint(self.reactor, self.port, interface=interface)
        return endpoint.listen(site.site)

    def label(self, address: Any) -> str:
        """
        @param address: the bound address.
        @return: the WebSocket URLs served there.
        """
        scheme = "wss" if self.secure else "ws"
        host = f"[{address.host}]" if ":" in address.host else address.host
        return ", ".join(f"{scheme}://{host}:{address.port}{path}" for path in self.paths)


def parseListeners(reactor: Any, descriptions: list[Any], tls: TLSServerSettings | None) -> list[Any]:
    """
    @param reactor: the reactor.
    @param descriptions: listener descriptions, or stream endpoint objects.
    @param tls: TLS files for C{tls:} and C{wss://} listeners.
    @return: the listeners (WebSocket URLs on one port merged into one).
    @raise ConfigError: a description is wrong.
    """
    listeners: list[Any] = []
    ports: dict[tuple, WebSocketListener] = {}
    for d in descriptions:
        if not isinstance(d, str):
            listeners.append(StreamListener(repr(d), d))
        elif d.startswith(("ws://", "wss://")):
            secure, host, port, path, options = parseWebSocketURL(d)
            key = (secure, host, port)
            if key not in ports or port == 0:
                ports[key] = WebSocketListener(reactor, secure, host, port, tls)
                listeners.append(ports[key])
            ports[key].add(d, path, options)
        elif splitDescription(d)[0] == "udp":
            listeners.append(UDPListener(reactor, d))
        else:
            listeners.append(StreamListener(d, serverEndpoint(reactor, d, tls)))
    return listeners
