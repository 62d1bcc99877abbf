"""
What a server listens on, by kind of description:

  - stream endpoints (C{tcp:}, C{tcp6:}, C{unix:}, C{tls:}/C{ssl:}, any
    Twisted endpoint string, with C{:maxSessions=N} and C{:backlog=N}): a
    session per connection;
  - C{udp:PORT[:interface=ADDR][:maxPeers=N]}: a session per peer address;
  - C{ws://HOST:PORT/PATH} and C{wss://...} (options in the query:
    C{allowedOrigins}, C{deflate}, C{static}, C{maxSessions}, C{backlog}):
    a session per WebSocket; the paths given for one port share it.

Each stream and WebSocket listener holds at most C{maxSessions}
connections (L{SessionCap}); it listens with a backlog of C{backlog}.

A description may come paired with an endpoint, C{(description,
endpoint)}: the description's own options (C{maxSessions}, WebSocket paths
and query options, C{maxPeers}) apply, and the socket comes from the
endpoint instead of being bound here (a worker's adopted listener, see
L{txgetty.workers}; for C{udp:} an endpoint with C{listen(protocol,
maxPacketSize)}).  Such an endpoint does its own TLS.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure

from ..transports.udp import MAX_DATAGRAM, UDPServerProtocol, parseUDP
from ..transports.addresses import formatAddress
from ..config import DEFAULT_LISTEN_BACKLOG, DEFAULT_MAX_SESSIONS, checkListenerSetting
from ..transports.endpoints import parseWebSocketURL, serverEndpoint, splitDescription
from ..errors import ConfigError
from ..interfaces import ISessionFactory
from ..tally import Tally
from ..transports.sockets import AcceptedSockets
from ..transports.tls import TLSServerSettings

_log = Logger()

#: Seconds between two log lines about refused connections of a listener.
REFUSAL_LOG_INTERVAL = 10.0
#: Seconds a refused connection is kept, half closed, for the peer to close
#: its side (so that the peer sees a clean end rather than a reset).
REFUSAL_LINGER = 2.0
#: Refused connections of a listener kept half closed at most; beyond, they
#: are closed at once.
MAX_LINGERING = 256
#: The endpoint kinds whose Twisted parsers take a C{backlog}.
_BACKLOG_KINDS = ("tcp", "tcp6", "unix", "tls", "ssl")


def _rawTransport(transport: Any) -> Any:
    """
    @param transport: a transport, perhaps TLS-wrapped.
    @return: the TCP (or UNIX) transport under it.
    """
    while isinstance(transport, ProtocolWrapper):
        transport = transport.transport
    return transport


class _Refusal(Protocol):
    """
    A connection refused because its listener is full: its write side is
    closed at once (the peer reads the end of the stream; nothing else is
    sent, not even a TLS handshake), what it sends is discarded, and it is
    closed when the peer closes, or after L{REFUSAL_LINGER} seconds.
    """

    def __init__(self, cap: SessionCap) -> None:
        """
        @param cap: the listener's cap.
        """
        self.cap = cap
        self._call: Any = None

    def makeConnection(self, transport: Any) -> None:
        """
        @param transport: the refused connection.
        """
        self.transport = transport
        raw = _rawTransport(transport)
        self.cap.lingering += 1
        if self.cap.lingering > MAX_LINGERING or not hasattr(raw, "loseWriteConnection"):
            raw.loseConnection()
            return
        raw.loseWriteConnection()
        self._call = self.cap.clock.callLater(REFUSAL_LINGER, raw.loseConnection)

    def dataReceived(self, data: bytes) -> None:
        """
        @param data: discarded.
        """

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        @param reason: why.
        """
        self.cap.lingering -= 1
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class SessionCap:
    """
    The connections of one listener, from accept to their end: beyond
    C{maxSessions} a new connection is closed at once (L{_Refusal}),
    counted, and logged once per L{REFUSAL_LOG_INTERVAL}.

    @ivar maxSessions: the most connections held (0: no limit).
    @ivar active: connections held now.
    @ivar lingering: refused connections not yet gone.
    """

    def __init__(self, clock: Any, label: str, maxSessions: int) -> None:
        """
        @param clock: the reactor.
        @param label: the listener, for the log.
        @param maxSessions: the limit (0: none).
        """
        self.clock = clock
        self.label = label
        self.maxSessions = maxSessions
        self.active = 0
        self.lingering = 0
        #: More things to stop with the listener (a WebSocket port's stages).
        self.also: list[Any] = []
        self.refusals = Tally(
            clock,
            "txgetty: {endpoint} holds maxSessions ({limit}) connections: refused one from {peer} "
            "(closed at once); further refusals are counted and logged every {interval:g} s",
            "txgetty: {endpoint} refused {count} more connections in the last {interval:g} s, {total} in all: "
            "it holds maxSessions ({limit}); raise maxSessions (--max-sessions, or :maxSessions=N in "
            "the listener) if they are welcome",
            interval=REFUSAL_LOG_INTERVAL, log=_log,
        )

    @property
    def refused(self) -> int:
        """
        Connections refused so far.
        """
        return self.refusals.total

    def admit(self) -> bool:
        """
        @return: whether a new connection may be held (then it counts).
        """
        if self.maxSessions and self.active >= self.maxSessions:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        """
        A connection that was admitted is gone.
        """
        self.active -= 1

    def stop(self) -> None:
        """
        The listener stopped: no more log lines about refusals (nor about
        what L{also} counts).
        """
        self.refusals.stop()
        for other in self.also:
            other.stop()

    def refuse(self, addr: Any) -> Protocol:
        """
        @param addr: the refused peer's address.
        @return: the protocol that closes the connection.
        """
        self.refusals.count(endpoint=self.label, limit=self.maxSessions, peer=formatAddress(addr))
        return _Refusal(self)


class _SessionFactory(Factory):
    """
    Makes a session per accepted connection of a stream listener, up to its
    cap.
    """

    noisy = False

    def __init__(self, server: ISessionFactory, cap: SessionCap) -> None:
        """
        @param server: the server owning the sessions.
        @param cap: the listener's cap.
        """
        self.server = server
        self.cap = cap
        #: What its accepted sockets take from the listening socket (set
        #: once it listens, for a TCP port).
        self.accepted: AcceptedSockets | None = None

    def buildProtocol(self, addr: Any) -> Any:
        """
        @param addr: the peer's address.
        @return: a new session, registered with the server, or the
            protocol that refuses the connection.
        """
        if not self.cap.admit():
            return self.cap.refuse(addr)
        # (Positional: a call with keywords takes CPython's slower path.)
        return self.server.newSession(addr, None, self.cap, self.accepted)


def takeOption(description: str, key: str) -> tuple[str, str | None]:
    """
    Take a C{:key=value} option out of an endpoint description.

    @param description: the description.
    @param key: the option's name.
    @return: the description without it, and its value (C{None} if absent;
        the last one if given twice).
    """
    pattern = re.compile(r"(?<!\\):" + re.escape(key) + r"=((?:\\.|[^:\\])*)")
    values = pattern.findall(description)
    return pattern.sub("", description), (values[-1] if values else None)


class StreamListener:
    """
    A stream endpoint.

    @ivar description: the text it came from.
    @ivar maxSessions: its session cap (0: none).
    @ivar cap: its L{SessionCap}, once listening.
    """

    def __init__(self, description: str, endpoint: IStreamServerEndpoint,
                 maxSessions: int = DEFAULT_MAX_SESSIONS) -> None:
        """
        @param description: the text it came from.
        @param endpoint: the endpoint.
        @param maxSessions: its session cap (0: none).
        """
        self.description = description
        self.endpoint = endpoint
        self.maxSessions = maxSessions
        self.cap: SessionCap | None = None

    def listen(self, server: ISessionFactory) -> Deferred:
        """
        @param server: the server, as an L{ISessionFactory <txgetty.interfaces.ISessionFactory>}.
        @return: a L{Deferred} firing with the listening port.
        """
        self.cap = SessionCap(server.reactor, self.description, self.maxSessions)
        factory = _SessionFactory(server, self.cap)

        def listening(port: Any) -> Any:
            # The server's TCP options, set once on the listening socket
            # (see AcceptedSockets for what the accepted sockets inherit).
            config = server.config
            factory.accepted = AcceptedSockets.preset(port, config.tcpNoDelay, config.tcpKeepAlive,
                                                      config.keepAlivePeriod)
            return port

        return self.endpoint.listen(factory).addCallback(listening)

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

    def __init__(self, reactor: Any, description: str, maxPeers: int = DEFAULT_MAX_SESSIONS,
                 endpoint: Any = None) -> None:
        """
        @param reactor: the reactor.
        @param description: C{udp:PORT[:interface=ADDR][:maxPeers=N]}.
        @param maxPeers: the peer limit when the description names none (the
            server's C{maxSessions}).
        @param endpoint: an adopted socket to listen on instead of binding
            one (its C{listen(protocol, maxPacketSize)} fires with the port).
        @raise ConfigError: the description is wrong.
        """
        _, args, kw = splitDescription(description)
        kw.setdefault("maxPeers", str(maxPeers))
        self.port, self.interface, self.maxPeers = parseUDP(description, args, kw)
        self.reactor = reactor
        self.description = description
        self.endpoint = endpoint
        self.protocol: UDPServerProtocol | None = None

    def listen(self, server: ISessionFactory) -> Deferred:
        """
        @param server: the server, as an L{ISessionFactory <txgetty.interfaces.ISessionFactory>}.
        @return: a L{Deferred} firing with the UDP port.
        """
        maxDatagram = min(server.config.maxMsgLen, MAX_DATAGRAM)
        self.protocol = UDPServerProtocol(server, self.description, self.maxPeers, maxDatagram)
        if self.endpoint is not None:
            return maybeDeferred(self.endpoint.listen, self.protocol, maxPacketSize=maxDatagram + 1)
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

    def __init__(self, reactor: Any, secure: bool, host: str, port: int, tls: TLSServerSettings | None,
                 maxSessions: int = DEFAULT_MAX_SESSIONS, backlog: int = DEFAULT_LISTEN_BACKLOG) -> None:
        """
        @param reactor: the reactor.
        @param secure: C{wss}.
        @param host: the interface to listen on.
        @param port: the port.
        @param tls: the TLS files, for C{wss}.
        @param maxSessions: the most connections held (HTTP and WebSocket),
            unless a URL names its own.
        @param backlog: the listen backlog, unless a URL names its own.
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
        self.maxSessions = maxSessions
        self.backlog = backlog
        self.cap: SessionCap | None = None
        #: An adopted socket to serve instead of binding one (TLS included).
        self.endpoint: Any = None

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
        options = dict(options)
        for name in ("maxSessions", "backlog"):
            if name in options:
                setattr(self, name, checkListenerSetting(name, options.pop(name), description))
        self.paths.append(path)
        self.options.update(options)
        self.descriptions.append(description)

    def listen(self, server: ISessionFactory) -> Deferred:
        """
        @param server: the server, as an L{ISessionFactory <txgetty.interfaces.ISessionFactory>}.
        @return: a L{Deferred} firing with the listening port.
        """
        try:
            from ..transports.websocket import WebSocketSite  # autobahn only for WebSocket servers

            self.cap = SessionCap(server.reactor, self.description, self.maxSessions)
            site = WebSocketSite(server, self.secure, self.paths, dict(self.options), self.cap)
        except ConfigError:
            return fail(Failure())
        interface = "" if self.host in ("0.0.0.0", "") else self.host
        if self.endpoint is not None:
            endpoint: Any = self.endpoint
        elif self.secure:
            assert self.tls is not None  # __init__ refuses wss without TLS files
            endpoint = SSL4ServerEndpoint(self.reactor, self.port, self.tls.options(),
                                               backlog=self.backlog, interface=interface)
        else:
            endpoint = TCP4ServerEndpoint(self.reactor, self.port, backlog=self.backlog, interface=interface)
        return endpoint.listen(site.site)

    def label(self, address: Any) -> str:
        """
        @param address: the bound address.
        @return: the WebSocket URLs served there.
        """
        scheme = "wss" if self.secure else "ws"
        host = f"[{address.host}]" if ":" in address.host else address.host
        return ", ".join(f"{scheme}://{host}:{address.port}{path}" for path in self.paths)


def _streamListener(reactor: Any, description: str, tls: TLSServerSettings | None,
                    maxSessions: int, backlog: int, adopted: Any = None) -> StreamListener:
    """
    @param reactor: the reactor.
    @param description: a stream endpoint description, perhaps with
        C{:maxSessions=N} and C{:backlog=N}.
    @param tls: TLS files for C{tls:} listeners.
    @param maxSessions: the cap unless the description names one.
    @param backlog: the backlog unless the description names one (for the
        kinds whose parser takes one).
    @return: the listener.
    @raise ConfigError: the description is wrong.
    """
    endpointText, cap = takeOption(description, "maxSessions")
    if cap is not None:
        maxSessions = checkListenerSetting("maxSessions", cap, description)
    if adopted is not None:
        return StreamListener(description, adopted, maxSessions)
    kind, _, kw = splitDescription(endpointText)
    if "backlog" in kw:
        checkListenerSetting("backlog", kw["backlog"], description)
    elif kind in _BACKLOG_KINDS:
        endpointText += f":backlog={backlog}"
    try:
        endpoint = serverEndpoint(reactor, endpointText, tls)
    except ConfigError as e:
        # Name the description as it was given, not the one with our options.
        raise ConfigError(str(e).replace(repr(endpointText), repr(description))) from None
    return StreamListener(description, endpoint, maxSessions)


def parseListeners(reactor: Any, descriptions: list[Any], tls: TLSServerSettings | None,
                   maxSessions: int = DEFAULT_MAX_SESSIONS, backlog: int = DEFAULT_LISTEN_BACKLOG) -> list[Any]:
    """
    @param reactor: the reactor.
    @param descriptions: listener descriptions, stream endpoint objects, or
        C{(description, endpoint)} pairs (the description's options, the
        endpoint's socket).
    @param tls: TLS files for C{tls:} and C{wss://} listeners.
    @param maxSessions: the session cap of the listeners that name none
        (UDP: their C{maxPeers}).
    @param backlog: the listen backlog of those that name none (endpoint
        objects keep their own).
    @return: the listeners (WebSocket URLs on one port merged into one).
    @raise ConfigError: a description is wrong.
    """
    maxSessions = checkListenerSetting("maxSessions", maxSessions)
    backlog = checkListenerSetting("backlog", backlog)
    listeners: list[Any] = []
    ports: dict[tuple, WebSocketListener] = {}
    for d in descriptions:
        adopted = None
        if isinstance(d, tuple):
            d, adopted = d
        if not isinstance(d, str):
            listeners.append(StreamListener(repr(d), d, maxSessions))
        elif d.startswith(("ws://", "wss://")):
            secure, host, port, path, options = parseWebSocketURL(d)
            key = (secure, host, port, id(adopted))
            if key not in ports or (port == 0 and adopted is None):
                ports[key] = WebSocketListener(reactor, secure, host, port, tls, maxSessions, backlog)
                ports[key].endpoint = adopted
                listeners.append(ports[key])
            ports[key].add(d, path, options)
        elif splitDescription(d)[0] == "udp":
            listeners.append(UDPListener(reactor, d, maxSessions or DEFAULT_MAX_SESSIONS, adopted))
        else:
            listeners.append(_streamListener(reactor, d, tls, maxSessions, backlog, adopted))
    return listeners
