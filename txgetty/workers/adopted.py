"""
The worker's side of the supervisor's sockets, as endpoints a
L{Server <txgetty.Server>} (or any Twisted factory) listens on:

  - L{AdoptedStreamEndpoint}: the connections of one stream listener, handed
    over by the supervisor (a descriptor per connection on the control
    channel) and adopted with C{reactor.adoptStreamConnection}; with TLS
    settings, each is wrapped in TLS here;
  - L{AdoptedDatagramEndpoint}: the worker's own C{SO_REUSEPORT} socket of a
    datagram listener, inherited at spawn, adopted with
    C{reactor.adoptDatagramPort}.

L{ConnectionReceiver} routes the descriptors that arrive to the stream
endpoints that listen, and counts the connections that are still open (for
the supervisor's balancing), without touching the per-packet path: the
count drops when the reactor calls the adopted transport's
C{connectionLost}, which the receiver wraps on that one transport object.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import AlreadyListened
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from zope.interface import Interface, implementer

from .sockets import FAMILIES

_log = Logger()


class IDatagramServerEndpoint(Interface):
    """
    Something a datagram protocol listens on (Twisted has no such
    interface).
    """

    def listen(protocol: Any, maxPacketSize: int = 8192) -> Deferred:
        """
        @param protocol: a L{DatagramProtocol <twisted.internet.protocol.DatagramProtocol>}.
        @param maxPacketSize: the largest datagram read.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the listening port.
        """


def makeAddress(family: str, address: Any) -> Any:
    """
    @param family: C{"INET"}, C{"INET6"} or C{"UNIX"}.
    @param address: C{[host, port]} or a UNIX path.
    @return: the Twisted address object of a listener.
    """
    if family == "UNIX":
        return UNIXAddress(address)
    kind = IPv6Address if family == "INET6" else IPv4Address
    return kind("TCP", address[0], address[1])


class ConnectionReceiver:
    """
    The listening stream endpoints of a worker, by listener id: adopts each
    connection the supervisor hands over.

    @ivar received: connections handed over so far.
    @ivar live: adopted connections still open.
    @ivar onChange: called (without arguments) when C{received} or C{live}
        changed, if set.
    """

    def __init__(self, reactor: Any, onChange: Callable[[], None] | None = None) -> None:
        """
        @param reactor: an L{IReactorSocket <twisted.internet.interfaces.IReactorSocket>}.
        @param onChange: see L{onChange}.
        """
        self.reactor = reactor
        self.received = 0
        self.live = 0
        self.onChange = onChange
        self._ports: dict[str, AdoptedPort] = {}

    def register(self, port: AdoptedPort) -> None:
        """
        @param port: a port that listens now.
        @raise AlreadyListened: its listener already has one.
        """
        if port.listenerId in self._ports:
            raise AlreadyListened(f"listener {port.listenerId} is already listened on in this worker")
        self._ports[port.listenerId] = port

    def unregister(self, port: AdoptedPort) -> None:
        """
        @param port: a port that stopped listening.
        """
        if self._ports.get(port.listenerId) is port:
            del self._ports[port.listenerId]

    def connectionReceived(self, listenerId: str, fd: int) -> None:
        """
        Adopt a connection (the descriptor is closed here either way: the
        transport has its own copy).

        @param listenerId: its listener.
        @param fd: its descriptor.
        """
        self.received += 1
        self._changed()
        port = self._ports.get(listenerId)
        try:
            if port is None:
                _log.warn("txgetty worker: a connection for listener {listenerId} arrived but nothing listens on "
                          "it here; closed", listenerId=listenerId)
                return
            transport = self.reactor.adoptStreamConnection(fd, FAMILIES[port.family], port.factory)
        except OSError as e:
            # The peer left before the worker took it (getpeername fails).
            _log.info("txgetty worker: a connection of listener {listenerId} ended before it was adopted: {reason}",
                      listenerId=listenerId, reason=str(e), error=type(e).__name__)
            return
        finally:
            os.close(fd)
        if transport is not None:
            self._watch(transport)

    def _watch(self, transport: Any) -> None:
        """
        Count a connection until the reactor tells its transport it is lost.
        """
        self.live += 1
        lost = transport.connectionLost

        def connectionLost(reason: Any) -> None:
            transport.connectionLost = lost  # once: the next call is Twisted's own
            self.live -= 1
            self._changed()
            lost(reason)

        transport.connectionLost = connectionLost

    def _changed(self) -> None:
        """
        Tell the owner the counts changed.
        """
        if self.onChange is not None:
            self.onChange()


@implementer(IListeningPort)
class AdoptedPort:
    """
    A stream listener of the supervisor as seen by one worker's factory.

    @ivar listenerId: the listener.
    @ivar family: its address family name.
    @ivar factory: what makes a protocol per connection.
    """

    def __init__(self, receiver: ConnectionReceiver, listenerId: str, family: str, address: Any,
                 factory: Any) -> None:
        self.receiver = receiver
        self.listenerId = listenerId
        self.family = family
        self.address = address
        self.factory = factory
        self.listening = False

    def startListening(self) -> None:
        """
        Take the listener's connections from now on.

        @raise AlreadyListened: another port of this worker takes them.
        """
        self.receiver.register(self)
        self.listening = True
        self.factory.doStart()

    def stopListening(self) -> Deferred:
        """
        Take no more connections (the supervisor's socket stays open; the
        other workers keep taking them).

        @return: a fired L{Deferred <twisted.internet.defer.Deferred>}.
        """
        if self.listening:
            self.listening = False
            self.receiver.unregister(self)
            self.factory.doStop()
        return succeed(None)

    def getHost(self) -> Any:
        """
        @return: the supervisor's bound address.
        """
        return makeAddress(self.family, self.address)

    def __repr__(self) -> str:
        return f"<AdoptedPort {self.listenerId} on {self.address!r}>"


@implementer(IStreamServerEndpoint)
class AdoptedStreamEndpoint:
    """
    Listen on a supervisor's stream listener: the connections it hands to
    this worker.

    @ivar description: the listener's description.
    """

    def __init__(self, receiver: ConnectionReceiver, listenerId: str, family: str, address: Any,
                 description: str = "", tls: Any = None) -> None:
        """
        @param receiver: the worker's L{ConnectionReceiver}.
        @param listenerId: the listener's id in the worker configuration.
        @param family: C{"INET"}, C{"INET6"} or C{"UNIX"}.
        @param address: the supervisor's bound address (C{[host, port]} or
            a path).
        @param description: the listener's description, for logs.
        @param tls: an C{IOpenSSLServerConnectionCreator} (e.g.
            C{TLSServerSettings.options()}): wrap every connection in TLS.
        """
        self.receiver = receiver
        self.listenerId = listenerId
        self.family = family
        self.address = address
        self.description = description
        self.tls = tls
        self._port: AdoptedPort | None = None

    def listen(self, factory: Any) -> Deferred:
        """
        @param factory: the protocol factory.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the L{AdoptedPort}.
        """
        if self._port is not None and self._port.listening:
            return fail(AlreadyListened(f"{self!r} is already listened on"))
        if self.tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self.tls, False, factory)
        port = AdoptedPort(self.receiver, self.listenerId, self.family, self.address, factory)
        try:
            port.startListening()
        except AlreadyListened:
            return fail()
        self._port = port
        return succeed(port)

    def __repr__(self) -> str:
        return f"{self.description or self.listenerId} (adopted from the supervisor)"


@implementer(IDatagramServerEndpoint)
class AdoptedDatagramEndpoint:
    """
    Listen on this worker's socket of a supervisor's datagram listener.

    The inherited descriptor stays open for the worker's life, so the
    endpoint can be listened on again after a stop.
    """

    def __init__(self, reactor: Any, fd: int, family: str, description: str = "") -> None:
        """
        @param reactor: an L{IReactorSocket <twisted.internet.interfaces.IReactorSocket>}.
        @param fd: the inherited socket.
        @param family: C{"INET"} or C{"INET6"}.
        @param description: the listener's description, for logs.
        """
        self.reactor = reactor
        self.fd = fd
        self.family = family
        self.description = description

    def listen(self, protocol: Any, maxPacketSize: int = 8192) -> Deferred:
        """
        @param protocol: the datagram protocol.
        @param maxPacketSize: the largest datagram read.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the UDP port.
        """
        try:
            return succeed(self.reactor.adoptDatagramPort(self.fd, FAMILIES[self.family], protocol, maxPacketSize))
        except Exception:
            return fail()

    def __repr__(self) -> str:
        return f"{self.description or 'udp'} (socket {self.fd}, adopted from the supervisor)"


def socketFamilyName(sock: socket.socket) -> str:
    """
    @param sock: a socket.
    @return: its family's name in L{FAMILIES}.
    """
    return {v: k for k, v in FAMILIES.items()}[sock.family]
