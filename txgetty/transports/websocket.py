"""
WebSocket and secure WebSocket for txgetty, on autobahn: one packet per
binary WebSocket message (the session's codec reads each message on its
own), C{maxMsgLen} enforced by autobahn as the largest message and frame, a
ping on every cron tick with dead-peer detection, and close codes that say
why a session ended.
"""

from __future__ import annotations

from struct import Struct
from typing import Any

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError, ConnectionDone
from twisted.internet.interfaces import IPushProducer, ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.static import File
from zope.interface import implementer

from twisted.internet.protocol import connectionDone

from ..interfaces import ISessionFactory
from .sockets import transportBacklog
from .wsstage import HTTPStages, StageSite
from .tls import describeHandshakeFailure, isTLSFailure, tlsConnectionOf
from ..errors import (
    CodecError,
    ConfigError,
    ConnectionClosedLocally,
    DeadPeerError,
    OutboundOverflowError,
    PacketTooLargeError,
    SessionTimeoutError,
    WebSocketClosedError,
)

_log = Logger()

#: The header of an unmasked, unfragmented binary frame (RFC 6455 section
#: 5.2: FIN + opcode 2, then the payload length in 7, 7+16 or 7+64 bits).
_HEADER16 = Struct("!BBH").pack
_HEADER64 = Struct("!BBQ").pack

#: What txgetty reads of autobahn, beyond its public API, to write a server's
#: frames itself (see L{WebSocketTransport.write}): constants of
#: C{WebSocketProtocol} and attributes of an open protocol.  If an autobahn
#: release lacks one of them, every write goes through C{sendMessage}.
_FRAME_CONSTANTS = ("STATE_OPEN", "SEND_STATE_GROUND")
_FRAME_ATTRIBUTES = (
    "state", "send_state", "send_queue", "maskServerFrames", "_perMessageCompress", "maxMessagePayloadSize",
)
_OPEN = getattr(WebSocketProtocol, "STATE_OPEN", None)
_GROUND = getattr(WebSocketProtocol, "SEND_STATE_GROUND", None)
_fallbackLogged = False


def directFrames(protocol: Any) -> bool:
    """
    Whether a session's writes may be framed by txgetty rather than by
    autobahn's C{sendMessage}: a server protocol that does not mask its
    frames, without permessage-deflate, of an autobahn that has every
    attribute of L{_FRAME_ATTRIBUTES} and L{_FRAME_CONSTANTS}.  The first
    time the attributes are missing, an info line says so.

    @param protocol: an open autobahn protocol.
    @return: C{True} for direct frames.
    """
    global _fallbackLogged
    missing = [n for n in _FRAME_CONSTANTS if not hasattr(WebSocketProtocol, n)]
    missing += [n for n in _FRAME_ATTRIBUTES if not hasattr(protocol, n)]
    if missing:
        if not _fallbackLogged:
            _fallbackLogged = True
            _log.info(
                "txgetty: this autobahn has no {missing}: WebSocket messages are written with "
                "autobahn's sendMessage (same bytes, more CPU per message)",
                missing=", ".join(missing),
            )
        return False
    # autobahn's public websocket_extensions_in_use is filled only with the
    # handshake's reply; _perMessageCompress is what its own sendMessage
    # tests, so it is read here (listed in _FRAME_ATTRIBUTES: without it,
    # the sendMessage fallback above).
    return bool(protocol.factory.isServer and not protocol.maskServerFrames
                and protocol._perMessageCompress is None)

#: RFC 6455 close codes.
NORMAL, GOING_AWAY, PROTOCOL_ERROR, UNSUPPORTED_DATA = 1000, 1001, 1002, 1003
INVALID_PAYLOAD, POLICY_VIOLATION, MESSAGE_TOO_BIG, INTERNAL_ERROR = 1007, 1008, 1009, 1011


def closeCodeFor(reason: Failure | None) -> tuple[int, str]:
    """
    @param reason: why a session is closing (its C{closeReason}).
    @return: the close code and reason text to send (the text cut to the
        123 bytes a close frame allows).
    """
    if reason is None or reason.check(ConnectionDone):
        code = NORMAL
    elif reason.check(ConnectionClosedLocally):
        code = GOING_AWAY if "stopping" in reason.getErrorMessage() else NORMAL
    elif reason.check(PacketTooLargeError):
        code = MESSAGE_TOO_BIG
    elif reason.check(CodecError):
        code = UNSUPPORTED_DATA if "text message" in reason.getErrorMessage() else INVALID_PAYLOAD
    elif reason.check(SessionTimeoutError, OutboundOverflowError, DeadPeerError):
        code = POLICY_VIOLATION
    else:
        code = INTERNAL_ERROR
    text = "" if reason is None else reason.getErrorMessage()
    return code, text.encode("utf-8")[:123].decode("utf-8", "ignore")


def _closeFailure(protocol: Any, wasClean: bool, code: int | None, reason: str | None) -> Failure:
    """
    @param protocol: the autobahn protocol that closed.
    @param wasClean: autobahn's verdict on the close handshake.
    @param code: the close code the peer sent.
    @param reason: the reason it sent.
    @return: the close reason to give the session: C{ConnectionDone} for a
        normal close, otherwise an error saying what happened.
    """
    local = getattr(protocol, "localCloseCode", None)
    if getattr(protocol, "closingBySession", False):
        return Failure(ConnectionDone())
    if local == MESSAGE_TOO_BIG:
        limit = protocol.maxMessagePayloadSize
        return Failure(PacketTooLargeError(limit + 1, limit, what="a WebSocket message (close code 1009)"))
    if wasClean and code in (NORMAL, GOING_AWAY, None):
        # None: a close frame without a code (1005, a browser's plain
        # ws.close()), answered with 1000: a normal close too.
        return Failure(ConnectionDone())
    if local not in (None, NORMAL) and not wasClean:
        return Failure(WebSocketClosedError(local, getattr(protocol, "localCloseReason", "") or "closed by this side"))
    return Failure(WebSocketClosedError(code, reason or ("the connection was lost" if not wasClean else "")))


class _ExactTimer:
    """
    The timers of an autobahn factory (its handshake, ping and drop
    timeouts), exact: autobahn's own batched timer rounds each deadline down
    to a whole second of the clock, so a 0.5 s closing handshake could end at
    once.

    @ivar clock: the L{IReactorTime <twisted.internet.interfaces.IReactorTime>} the timers run on.
    """

    def __init__(self, clock: Any) -> None:
        """
        @param clock: the reactor.
        """
        self.clock = clock

    def call_later(self, delay: float, function: Any, *args: Any, **kwargs: Any) -> Any:
        """
        @param delay: seconds from now.
        @param function: what to call then.
        @return: the call; its C{cancel()} may be called more than once.
        """
        return _Call(self.clock.callLater(delay, function, *args, **kwargs))


class _Call:
    """
    A delayed call whose C{cancel()} does nothing once it ran or was
    cancelled (autobahn cancels without asking).
    """

    __slots__ = ("call",)

    def __init__(self, call: Any) -> None:
        """
        @param call: the L{IDelayedCall <twisted.internet.interfaces.IDelayedCall>}.
        """
        self.call = call

    def cancel(self) -> None:
        """
        Cancel the call if it is still pending.
        """
        if self.call.active():
            self.call.cancel()


def _exactTimers(factory: Any, clock: Any) -> None:
    """
    Give an autobahn factory exact timers, if it has the batched ones this
    module knows (a later autobahn keeps its own otherwise).

    @param factory: a WebSocket factory.
    @param clock: the reactor.
    """
    # autobahn has no public setting for the timers of its opening and
    # closing handshakes and pings (it batches them to 1 s steps); replacing
    # its private _batched_timer is the only way to exact timeouts.  Without
    # it (another autobahn release), autobahn keeps its batched timers.
    if hasattr(factory, "_batched_timer"):
        factory._batched_timer = _ExactTimer(clock)


@implementer(ITransport, IPushProducer)
class WebSocketTransport:
    """
    The transport of a WebSocket session: each write is one binary message.

    @ivar protocol: the autobahn protocol.
    @ivar underlyingTransport: the TCP (or TLS) transport under it.
    """

    messages = True
    idleIsError = True

    def __init__(self, protocol: Any) -> None:
        """
        @param protocol: the open autobahn protocol.
        """
        self.protocol = protocol
        self.underlyingTransport = protocol.transport
        factory = protocol.factory
        self.sessionName = getattr(factory, "sessionName", None) or (
            "wss-session" if factory.isSecure else "ws-session"
        )
        self.pingOutstanding = False
        self.disconnecting = False
        # Frames a server sends are not masked (unless autobahn was told to
        # mask them), and without permessage-deflate (negotiated before the
        # session starts) not compressed: txgetty can write them itself, see
        # write().  An autobahn without the attributes this needs gets every
        # write through sendMessage.
        self._plainFrames = directFrames(protocol)

    def write(self, data: bytes) -> None:
        """
        @param data: one binary message.
        """
        if self.disconnecting:
            return
        protocol = self.protocol
        if (self._plainFrames and protocol.state == _OPEN and protocol.send_state == _GROUND
                and not protocol.send_queue and len(data) <= protocol.maxMessagePayloadSize):
            # The common case on a server: the frame is the header and the
            # data, written here rather than by autobahn's sendMessage (a
            # fifth of the server's CPU per message, for the same bytes).
            n = len(data)
            if n < 126:
                header = bytes((0x82, n))
            elif n < 65536:
                header = _HEADER16(0x82, 126, n)
            else:
                header = _HEADER64(0x82, 127, n)
            self.underlyingTransport.write(header + data)
        else:
            protocol.sendMessage(data, isBinary=True)

    def writeSequence(self, seq: Any) -> None:
        """
        @param seq: several messages.
        """
        for data in seq:
            self.write(data)

    def loseConnection(self) -> None:
        """
        Start the close handshake with the code and reason that fit the
        session's C{closeReason}.
        """
        if self.disconnecting:
            return
        self.disconnecting = True
        self.protocol.closingBySession = True
        code, reason = closeCodeFor(self.protocol.session.closeReason)
        # sendClose() only takes 1000 and 3000-4999; the RFC 6455 codes for
        # errors (1001, 1003, 1007-1011) go through the frame-level call.
        self.protocol.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8") or None, isReply=False)

    def abortConnection(self) -> None:
        """
        Drop the TCP connection without a close handshake.
        """
        self.disconnecting = True
        self.protocol.closingBySession = True
        self.protocol.dropConnection(abort=True)

    def keepAlive(self) -> None:
        """
        Called on every cron tick: ping; if the previous ping got no pong,
        the peer is dead.
        """
        if self.pingOutstanding:
            session = self.protocol.session
            session.fail(Failure(DeadPeerError(
                f"no pong to the ping sent {session.cronPeriod:g} s ago (one per cronPeriod): "
                f"the peer is gone"
            )))
            return
        self.pingOutstanding = True
        self.protocol.sendPing()

    def getHost(self) -> Any:
        """
        @return: the local address of the TCP connection.
        """
        return self.underlyingTransport.getHost()

    def getPeer(self) -> Any:
        """
        @return: the peer's address.
        """
        return self.underlyingTransport.getPeer()

    def pauseProducing(self) -> None:
        """
        Stop reading from the TCP connection.
        """
        self.underlyingTransport.pauseProducing()

    def resumeProducing(self) -> None:
        """
        Read again.
        """
        self.underlyingTransport.resumeProducing()

    def stopProducing(self) -> None:
        """
        Drop the connection.
        """
        self.abortConnection()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        @param producer: paused while the TCP buffer is full.
        @param streaming: as for Twisted.
        """
        self.underlyingTransport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        """
        Forget the producer.
        """
        self.underlyingTransport.unregisterProducer()

    def backlog(self) -> int:
        """
        @return: bytes waiting in the TCP (or TLS) transport.
        """
        return transportBacklog(self.underlyingTransport)


class _SessionCarrier:
    """
    What the server and client protocols share: handing messages, pongs and
    the close to the session.
    """

    #: Set when the session closes or aborts the connection itself: the
    #: end is then a normal one, whatever close code autobahn records.
    closingBySession = False
    session: Any = None
    wsTransport: WebSocketTransport | None = None
    factory: Any

    def attachSession(self, session: Any) -> None:
        """
        Connect a session through a L{WebSocketTransport}, then give autobahn
        the session's (possibly changed) size limit.

        @param session: the new session.
        """
        self.session = session
        self.wsTransport = WebSocketTransport(self)
        session.makeConnection(self.wsTransport)
        self.maxMessagePayloadSize = self.maxFramePayloadSize = session.maxMsgLen

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """
        @param payload: one message.
        @param isBinary: whether it is binary; text messages are refused.
        """
        session = self.session
        if session is None:
            return
        if not isBinary:
            session.fail(Failure(CodecError(
                "a text message arrived; txgetty sessions exchange binary messages (close code 1003)"
            )))
            return
        session.messageReceived(payload)

    def onPong(self, payload: bytes) -> None:
        """
        @param payload: the pong's data: the peer is alive (and not idle,
        for C{readIdleTimeout}: a browser that answers pings is there).
        """
        if self.wsTransport is not None:
            self.wsTransport.pingOutstanding = False
            self.session.lastActive = self.factory.clock.seconds()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        """
        The WebSocket is closed: tell the session why.

        @param wasClean: whether the close handshake completed.
        @param code: the peer's close code.
        @param reason: the peer's close reason.
        """
        if self.session is not None:
            self.session.connectionLost(_closeFailure(self, wasClean, code, reason))


# autobahn's own bases disagree on the types of peer and _transport_details:
class _ServerProtocol(_SessionCarrier, WebSocketServerProtocol):  # type: ignore[misc]
    """
    A server-side WebSocket connection: the session starts after the
    upgrade.
    """

    _path = "/"

    def onConnect(self, request: Any) -> None:
        """
        @param request: the upgrade request; its path is kept for the
            new-session callback (C{session.getAttribute("ws.path")}).
        """
        self._path = request.path

    def onOpen(self) -> None:
        """
        The upgrade is done: the HTTP stage is over; make the session.
        """
        factory = self.factory
        factory.stages.upgraded(self.transport)
        session = factory.server.newSession(self.peer, name=factory.sessionName)
        session.setAttribute("ws.path", self._path)
        self.attachSession(session)


    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        The connection is gone: it no longer counts for the listener's cap.

        @param reason: why.
        """
        self.factory.stages.end(self.transport)
        WebSocketServerProtocol.connectionLost(self, reason)


def _mount(root: Resource, path: str, child: IResource) -> None:
    """
    Put a resource at a path below a root.

    @param root: the root resource.
    @param path: e.g. C{/a/b}.
    @param child: the resource to put there.
    """
    parts = [p for p in path.split("/") if p]
    node = root
    for part in parts[:-1]:
        below = node.getStaticEntity(part.encode()) if hasattr(node, "getStaticEntity") else None
        if below is None:
            below = Resource()
            node.putChild(part.encode(), below)
        node = below
    node.putChild(parts[-1].encode(), child)


class _ServerFactory(WebSocketServerFactory):
    """
    The autobahn factory of a WebSocket port, with what the server protocol
    reads of it.

    @ivar server: the server, as an L{ISessionFactory <txgetty.interfaces.ISessionFactory>}.
    @ivar sessionName: C{ws-session} or C{wss-session}.
    @ivar clock: the reactor (pongs set the session's C{lastActive}).
    @ivar stages: the port's connections (L{HTTPStages}).
    """

    server: ISessionFactory
    sessionName: str
    clock: Any
    stages: HTTPStages


class WebSocketSite:
    """
    The twisted.web site of one WebSocket port: several paths, one factory,
    optionally a directory of static files (for a browser page).

    @ivar paths: the WebSocket paths served.
    """

    def __init__(self, server: ISessionFactory, secure: bool, paths: list[str], options: dict[str, str], cap: Any) -> None:
        """
        @param server: the server, as an L{ISessionFactory <txgetty.interfaces.ISessionFactory>}.
        @param secure: C{wss} rather than C{ws}.
        @param paths: the WebSocket paths.
        @param options: C{allowedOrigins} (comma separated), C{deflate}
            (yes/no), C{static} (a directory).
        @param cap: the listener's L{SessionCap
            <txgetty.server.ports.SessionCap>}.
        @raise ConfigError: an option is unknown or wrong.
        """
        config = server.config
        factory = _ServerFactory()
        _exactTimers(factory, server.reactor)
        factory.protocol = _ServerProtocol
        factory.server = server
        factory.clock = server.reactor
        factory.sessionName = "wss-session" if secure else "ws-session"
        factory.stages = HTTPStages(server.reactor, cap, config.openTimeout, cap.label)
        cap.also.append(factory.stages)
        # failByDrop=False: protocol failures (an oversize message) end with
        # a close frame saying why (1009), not a bare TCP abort.
        settings: dict[str, Any] = {
            "maxMessagePayloadSize": config.maxMsgLen, "maxFramePayloadSize": config.maxMsgLen,
            "closeHandshakeTimeout": max(config.waitTime, 0.1), "autoFragmentSize": 0, "failByDrop": False,
        }
        if config.openTimeout:
            settings["openHandshakeTimeout"] = config.openTimeout
        origins = options.pop("allowedOrigins", None)
        if origins:
            settings["allowedOrigins"] = [o for o in origins.split(",") if o]
        if options.pop("deflate", "no").lower() in ("1", "yes", "true", "on"):
            settings["perMessageCompressionAccept"] = _acceptDeflate
        static = options.pop("static", None)
        if options:
            raise ConfigError(f"unknown WebSocket option {sorted(options)[0]!r}; "
                              f"a ws:// listener takes allowedOrigins, deflate, static, maxSessions and backlog")
        factory.setProtocolOptions(**settings)
        resource = WebSocketResource(factory)
        root: Any = File(static) if static else Resource()  # or the WebSocketResource
        for path in paths:
            if path.strip("/"):
                _mount(root, path, resource)
            elif static:
                raise ConfigError("a ws:// listener with static= needs a WebSocket path other than /")
            else:
                root = resource
        self.paths = paths
        self.factory = factory
        self.site = StageSite(root, factory.stages)
        self.site.noisy = False


def _acceptDeflate(offers: list[Any]) -> Any:
    """
    @param offers: the client's compression offers.
    @return: the accept for the first permessage-deflate offer, if any.
    """
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


# (as for _ServerProtocol)
class _ClientProtocol(_SessionCarrier, WebSocketClientProtocol):  # type: ignore[misc]
    """
    A client-side WebSocket connection: the session starts after the
    upgrade and the pending connect fires with it.
    """

    def onOpen(self) -> None:
        """
        The upgrade is done: make the session, fire the connect Deferred.
        """
        factory = self.factory
        assert self.transport is not None  # open: connected
        self.attachSession(factory.sessionFactory.buildProtocol(self.transport.getPeer()))
        waiting, factory.waiting = factory.waiting, None
        if waiting is not None:
            waiting.callback(self.session)

    _lostReason: Failure | None = None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Keep why the transport went, to report a TLS failure in its own
        words.

        @param reason: why.
        """
        self._lostReason = reason
        WebSocketClientProtocol.connectionLost(self, reason)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        """
        Closed: before the upgrade, the connect fails; after, the session
        ends.

        @param wasClean: whether the close handshake completed.
        @param code: the server's close code.
        @param reason: its reason.
        """
        waiting, self.factory.waiting = self.factory.waiting, None
        if waiting is not None:
            lost = self._lostReason
            if lost is not None and isTLSFailure(lost):
                assert self.transport is not None  # set, as the connection was made
                error: Exception = describeHandshakeFailure(lost, self.transport.getPeer(),
                                                            connection=tlsConnectionOf(self.transport))
            else:
                error = ConnectError(f"the WebSocket handshake with {self.factory.url} failed: "
                                     f"{reason or code or 'closed'}")
            waiting.errback(Failure(error))
        _SessionCarrier.onClose(self, wasClean, code, reason)


class _ClientFactory(WebSocketClientFactory):
    """
    The autobahn factory of one client connection attempt.

    @ivar sessionFactory: builds the session.
    @ivar waiting: the connect L{Deferred <twisted.internet.defer.Deferred>},
        until the WebSocket opens or fails.
    @ivar protocolInstance: the protocol, once the TCP connection is made.
    @ivar clock: the reactor (pongs set the session's C{lastActive}).
    """

    sessionFactory: Any
    waiting: Deferred | None
    protocolInstance: Any
    clock: Any


class WebSocketClientEndpoint:
    """
    A client endpoint for C{ws://} and C{wss://} URLs, usable by
    L{txgetty.Client}: C{connect} fires with the session once the
    upgrade is done.
    """

    def __init__(self, reactor: Any, url: str, streamEndpoint: Any, maxMsgLen: int,
                 deflate: bool = False) -> None:
        """
        @param reactor: the reactor.
        @param url: the C{ws://} or C{wss://} URL.
        @param streamEndpoint: the TCP (or TLS) endpoint to the server.
        @param maxMsgLen: the largest message accepted.
        @param deflate: offer permessage-deflate.
        """
        self.reactor = reactor
        self.url = url
        self.stream = streamEndpoint
        self.maxMsgLen = maxMsgLen
        self.deflate = deflate

    def connect(self, sessionFactory: Any) -> Deferred:
        """
        @param sessionFactory: builds the session.
        @return: a L{Deferred} firing with the session once the WebSocket is
            open; cancelling it drops the attempt.
        """
        factory = _ClientFactory(self.url)
        factory.clock = self.reactor
        _exactTimers(factory, self.reactor)
        factory.protocol = _ClientProtocol
        factory.sessionFactory = sessionFactory
        factory.noisy = False
        options: dict[str, Any] = {
            "maxMessagePayloadSize": self.maxMsgLen, "maxFramePayloadSize": self.maxMsgLen,
            "autoFragmentSize": 0, "failByDrop": False,
        }
        if self.deflate:
            options["perMessageCompressionOffers"] = [PerMessageDeflateOffer()]
            options["perMessageCompressionAccept"] = lambda response: _acceptClientDeflate(response)
        factory.setProtocolOptions(**options)
        connecting = self.stream.connect(factory)

        def cancel(d: Deferred) -> None:
            factory.waiting = None
            connecting.cancel()
            if connecting.called and factory.protocolInstance is not None:
                factory.protocolInstance.dropConnection(abort=True)

        waiting: Deferred = Deferred(cancel)
        factory.waiting = waiting
        factory.protocolInstance = None
        connecting.addCallback(lambda proto: setattr(factory, "protocolInstance", proto))
        connecting.addErrback(lambda f: factory.waiting.errback(f) if factory.waiting else None)
        return waiting


def _acceptClientDeflate(response: Any) -> Any:
    """
    @param response: the server's compression response.
    @return: the client-side accept.
    """
    from autobahn.websocket.compress import PerMessageDeflateResponse, PerMessageDeflateResponseAccept

    if isinstance(response, PerMessageDeflateResponse):
        return PerMessageDeflateResponseAccept(response)
    return None
