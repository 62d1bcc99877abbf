"""
UDP for txgetty: every peer address is a session; one datagram is one
read of the session's codec.

UDP adds nothing to delivery: datagrams may be lost, duplicated or
reordered, and txgetty neither retransmits nor reorders them.  What txgetty
adds: sessions per peer (with C{onOpen} on a peer's first datagram and
C{onClose} after C{readIdleTimeout} seconds of silence, or on stop), the
codec, cron, counters, a limit on peers, and oversize datagrams dropped and
counted instead of silently truncated.

A UDP peer cannot be paused: when a session holds back reading (its
task-pool backlog passed C{backlogHighMark}, or the pool is full), its next
datagrams are dropped and counted instead, so a fast sender cannot grow the
server's memory.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError, MessageLengthError
from twisted.internet.interfaces import IPushProducer, IStreamClientEndpoint, ITransport
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..errors import ConfigError, DatagramTooLargeError
from ..interfaces import ISessionFactory
from .addresses import checkPort, formatAddress

_log = Logger()

#: The largest UDP payload over IPv4.
MAX_DATAGRAM = 65507
#: Seconds of silence after which a UDP peer's session closes, when the
#: server's config leaves C{readIdleTimeout} unset or 0.
DEFAULT_PEER_IDLE = 60.0
DEFAULT_MAX_PEERS = 10_000
#: The kinds of dropped datagrams (see L{UDPServerProtocol.drops}).
DROP_KINDS = ("oversize", "peers", "backlog")
#: The log line of the first dropped datagram of each kind, per listener.
DROP_FORMATS = {
    "oversize": "txgetty: {endpoint}: a datagram from {peer} is larger than {limit} bytes (maxMsgLen): "
                "dropped (counted in oversize; logged once per listener)",
    "peers": "txgetty: {endpoint} has {limit} peers (maxPeers): datagrams from new peers are dropped (the "
             "first from {peer}; logged once per listener)",
    "backlog": "txgetty: {endpoint}: {session!r} has more than backlogHighMark ({limit}) packets waiting for "
               "its task pool (or the pool is full): its datagrams are dropped until it catches up (logged "
               "once per listener)",
}


def _udpPeer(addr: tuple) -> str:
    """
    @param addr: a UDP sender C{(host, port)}.
    @return: it as the C{peer} log field: C{udp:127.0.0.1:5000}, C{udp:[::1]:5000}.
    """
    host, port = addr[0], addr[1]
    return f"udp:[{host}]:{port}" if ":" in host else f"udp:{host}:{port}"


@implementer(ITransport, IPushProducer)
class DatagramPeer:
    """
    The transport of a UDP session: writes are datagrams to one address.

    @ivar address: the peer's address.
    @ivar idleIsError: C{False}: a UDP peer that goes silent is closed
        cleanly (C{onClose} alone), it is how UDP peers leave.
    """

    idleIsError = False
    messages = True
    sessionName = "udp-session"

    def __init__(self, port: Any, address: Any, clock: Any, onGone: Callable[[DatagramPeer], None],
                 connected: bool = False) -> None:
        """
        @param port: the Twisted UDP port (its C{write(data, addr)}).
        @param address: the peer's L{IAddress <twisted.internet.interfaces.IAddress>}.
        @param clock: the reactor, to report the end asynchronously.
        @param onGone: called once the session is told the end.
        @param connected: the port is connected to the peer (client side).
        """
        self.port = port
        self.address = address
        self.protocol: Any = None
        self.disconnecting = False
        self._clock = clock
        self._onGone = onGone
        self._connected = connected
        self.portGone = False

    def write(self, data: bytes) -> None:
        """
        @param data: one datagram.
        @raise DatagramTooLargeError: it does not fit one datagram (nothing
            is sent).
        """
        if self.disconnecting or self.portGone:
            return
        try:
            if self._connected:
                self.port.write(data)
            else:
                self.port.write(data, (self.address.host, self.address.port))
        except MessageLengthError:
            raise DatagramTooLargeError(len(data), MAX_DATAGRAM, f"{self.address.host}:{self.address.port}") \
                from None
        except OSError as e:
            _log.info("txgetty: UDP send to {peer} failed: {reason}", peer=formatAddress(self.address),
                      reason=str(e), error=type(e).__name__)

    def writeSequence(self, seq: Any) -> None:
        """
        @param seq: several datagrams.
        """
        for data in seq:
            self.write(data)

    def loseConnection(self) -> None:
        """
        Forget the peer; the session hears of it right after.
        """
        self.end(Failure(ConnectionDone()))

    abortConnection = loseConnection

    def end(self, reason: Failure) -> None:
        """
        End the session (once), from the reactor, with C{reason}.

        @param reason: given to the session's C{connectionLost}.
        """
        if self.disconnecting:
            return
        self.disconnecting = True
        self._clock.callLater(0, self._lost, reason)

    def _lost(self, reason: Failure) -> None:
        """
        @param reason: why the session ends.
        """
        self._onGone(self)
        self.protocol.connectionLost(reason)

    def getHost(self) -> Any:
        """
        @return: the local UDP address.
        """
        return self.port.getHost()

    def getPeer(self) -> Any:
        """
        @return: the peer's UDP address.
        """
        return self.address

    def pauseProducing(self) -> None:
        """
        One peer cannot be paused on a shared UDP socket: while its session
        holds back reading, its datagrams queue in the session (an awaited
        handler, up to C{backlogHighMark}) or are dropped (a full task-pool
        backlog, see C{session.backlogFull}: a UDP socket shared by many
        peers cannot pause one of them).
        """

    resumeProducing = stopProducing = pauseProducing


def _address(host: str, port: int) -> Any:
    """
    @param host: an IP address.
    @param port: a port.
    @return: the UDP L{IAddress <twisted.internet.interfaces.IAddress>}.
    """
    return IPv6Address("UDP", host, port) if ":" in host else IPv4Address("UDP", host, port)


class UDPServerProtocol(DatagramProtocol):
    """
    One UDP listener of a server: a session per peer address.

    @ivar peers: the sessions by peer address.
    @ivar drops: datagrams dropped, by kind: C{oversize} (larger than the
        limit), C{peers} (from a new peer beyond C{maxPeers}), C{backlog}
        (for a session whose task-pool backlog is full).
    """

    def __init__(self, server: ISessionFactory, description: str, maxPeers: int, maxDatagram: int) -> None:
        """
        @param server: the server, as an L{ISessionFactory <txgetty.interfaces.ISessionFactory>}.
        @param description: the listener's text, for logs.
        @param maxPeers: sessions at most; datagrams from more peers are
            dropped.
        @param maxDatagram: datagrams longer than this are dropped.
        """
        self.server = server
        self.description = description
        self.maxPeers = maxPeers
        self.maxDatagram = maxDatagram
        self.peers: dict[tuple, Any] = {}
        self.drops = dict.fromkeys(DROP_KINDS, 0)
        self._warned: set[str] = set()

    def datagramReceived(self, data: bytes, addr: tuple) -> None:
        """
        @param data: one datagram.
        @param addr: its sender.
        """
        session = self.peers.get(addr)
        if len(data) > self.maxDatagram:
            self._drop("oversize", addr, self.maxDatagram)
            return
        if session is None:
            if len(self.peers) >= self.maxPeers:
                self._drop("peers", addr, self.maxPeers)
                return
            session = self._newPeer(addr)
            if session is None:
                return
        elif session.backlogFull:
            self._drop("backlog", addr, session.backlogHighMark, session)
            return
        session.messageReceived(data)

    def _newPeer(self, addr: tuple) -> Any:
        """
        @param addr: a new peer's address.
        @return: its session, or C{None} if it was refused.
        """
        address = _address(addr[0], addr[1])
        peer = DatagramPeer(self.transport, address, self.server.reactor, self._forget)
        session: Any = self.server.newSession(address, name="udp-session")  # a Session: also an IProtocol
        if not self.server.config.readIdleTimeout:
            # Unset (None: a stream session's 300 s) or 0: a UDP peer never
            # says goodbye, so it gets a limit of its own.
            session.readIdleTimeout = DEFAULT_PEER_IDLE
        peer.protocol = session
        self.peers[addr] = session
        session.makeConnection(peer)
        if session.isClosed:
            return None
        return session

    def _forget(self, peer: DatagramPeer) -> None:
        """
        @param peer: a peer whose session ended.
        """
        self.peers.pop((peer.address.host, peer.address.port), None)

    def _drop(self, kind: str, addr: tuple, limit: int, session: Any = None) -> None:
        """
        Count a dropped datagram; log the first of each kind.

        @param kind: the kind of drop (a key of L{drops} and of
            L{DROP_FORMATS}), to log it once.
        @param addr: the sender.
        @param limit: the limit it ran into (C{maxMsgLen}, C{maxPeers},
            C{backlogHighMark}).
        @param session: the peer's session (C{backlog} only).
        """
        self.drops[kind] += 1
        if kind not in self._warned:
            self._warned.add(kind)
            _log.warn(DROP_FORMATS[kind], kind=kind, endpoint=self.description, peer=_udpPeer(addr),
                      limit=limit, session=session)

    @property
    def dropped(self) -> int:
        """
        Datagrams dropped, of every kind.
        """
        return sum(self.drops.values())

    @property
    def oversize(self) -> int:
        """
        Datagrams dropped for being larger than the limit.
        """
        return self.drops["oversize"]

    def stopAll(self) -> list[Deferred]:
        """
        @return: the close Deferreds of every peer session.
        """
        return [s.close("the server is stopping") for s in list(self.peers.values())]


class _ConnectedUDP(DatagramProtocol):
    """
    The protocol of a client's connected UDP socket: datagrams go to the
    session, an ICMP refusal ends it.

    @ivar dropped: datagrams dropped because the session's task-pool backlog
        was full.
    """

    def __init__(self) -> None:
        self.peer: DatagramPeer | None = None
        self.dropped = 0

    def stopProtocol(self) -> None:
        """
        The socket is gone.  Unless the session is ending anyway, the
        reactor closed it on a socket error: on Linux an ICMP port
        unreachable is reported this way (epoll flags the socket), not
        through L{connectionRefused}.
        """
        peer = self.peer
        if peer is not None and not peer.disconnecting:
            peer.portGone = True
            self.connectionRefused()

    def datagramReceived(self, data: bytes, addr: tuple) -> None:
        """
        @param data: a datagram from the server.
        @param addr: the server's address.
        """
        peer = self.peer
        if peer is None or peer.disconnecting:
            return
        session = peer.protocol
        if session.backlogFull:
            self.dropped += 1
            if self.dropped == 1:
                _log.warn("txgetty: {session!r} has more than backlogHighMark ({limit}) packets waiting for its "
                          "task pool (or the pool is full): its datagrams are dropped until it catches up (logged "
                          "once per socket)", session=session, peer=formatAddress(peer.address),
                          limit=session.backlogHighMark, kind="backlog")
            return
        session.messageReceived(data)

    def connectionRefused(self) -> None:
        """
        The server's host answered with ICMP port unreachable.
        """
        peer = self.peer
        if peer is not None and not peer.disconnecting:
            session = peer.protocol
            session.fail(Failure(ConnectionRefusedError(
                f"UDP to {peer.address.host}:{peer.address.port} refused (ICMP port unreachable): "
                f"nothing listens there"
            )))


@implementer(IStreamClientEndpoint)
class UDPClientEndpoint:
    """
    A client endpoint for connected UDP, usable by L{txgetty.Client}
    (C{udp:HOST:PORT} addresses): C{connect} binds a local port, connects it
    to the server and returns the session at once.
    """

    def __init__(self, reactor: Any, host: str, port: int) -> None:
        """
        @param reactor: the reactor.
        @param host: the server's host name or address.
        @param port: its port.
        """
        self.reactor = reactor
        self.host = host
        self.port = port

    def connect(self, factory: Any) -> Deferred:
        """
        @param factory: builds the session.
        @return: a L{Deferred} firing with the connected session.
        """
        d = self.reactor.resolve(self.host) if not _isIP(self.host) else succeed(self.host)
        return d.addCallback(self._connectTo, factory)

    def _connectTo(self, ip: str, factory: Any) -> Any:
        """
        @param ip: the server's IP address.
        @param factory: builds the session.
        @return: the connected session.
        """
        protocol = _ConnectedUDP()
        udp = self.reactor.listenUDP(0, protocol, interface="::" if ":" in ip else "")
        udp.connect(ip, self.port)
        address = _address(ip, self.port)

        def gone(peer: DatagramPeer) -> None:
            if not peer.portGone:
                udp.stopListening()

        peer = protocol.peer = DatagramPeer(udp, address, self.reactor, gone, connected=True)
        session = factory.buildProtocol(address)
        peer.protocol = session
        session.makeConnection(peer)
        return session


def _isIP(host: str) -> bool:
    """
    @param host: a host name or address.
    @return: whether it is an IPv4 or IPv6 address.
    """
    from twisted.internet.abstract import isIPAddress, isIPv6Address

    return isIPAddress(host) or isIPv6Address(host)


def parseUDP(description: str, args: list[str], kw: dict[str, str]) -> tuple[int, str, int]:
    """
    @param description: a C{udp:PORT[:interface=ADDR][:maxPeers=N]} listener.
    @param args: its positional arguments.
    @param kw: its keyword arguments.
    @return: the port, the interface and the peer limit.
    @raise ConfigError: something is wrong; the message says what.
    """
    port = args[0] if args else kw.pop("port", "")
    interface = kw.pop("interface", "")
    maxPeers = kw.pop("maxPeers", str(DEFAULT_MAX_PEERS))
    if kw:
        raise ConfigError(f"unknown option {sorted(kw)[0]!r} in {description!r}; a UDP listener takes "
                          f"interface and maxPeers")
    try:
        peers = int(maxPeers)
    except ValueError:
        raise ConfigError(f"the UDP listener {description!r} needs a numeric maxPeers, got {maxPeers!r}") from None
    return checkPort(port, description, listening=True), interface, peers
