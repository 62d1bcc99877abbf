"""
What lies under a Twisted transport: the socket, the bytes handed to it
that the kernel has not taken yet, and the TCP options that the sockets a
listener accepts take from the listening socket.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
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


def tcpOptionValues(noDelay: bool, keepAlive: bool, period: float) -> tuple[int, ...]:
    """
    @param noDelay: C{tcpNoDelay}.
    @param keepAlive: C{tcpKeepAlive}.
    @param period: C{keepAlivePeriod}.
    @return: the socket option values these settings make, as
        C{getsockopt} reads them back: C{TCP_NODELAY}, C{SO_KEEPALIVE} and,
        with keepalive where the platform has them, C{TCP_KEEPIDLE} and
        C{TCP_KEEPINTVL}.
    """
    if not keepAlive or not hasattr(socket, "TCP_KEEPIDLE"):
        return (int(noDelay), int(keepAlive))
    idle = max(1, int(period))
    return (int(noDelay), 1, idle, min(idle, 75))


def setTcpOptions(sock: socket.socket, values: tuple[int, ...]) -> None:
    """
    @param sock: a TCP socket, listening or connected.
    @param values: from L{tcpOptionValues}.
    @raise OSError: the kernel refused one.
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, values[0])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, values[1])
    if len(values) > 2:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, values[2])
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, values[3])


def readTcpOptions(sock: socket.socket, like: tuple[int, ...]) -> tuple[int, ...]:
    """
    @param sock: a TCP socket.
    @param like: values of L{tcpOptionValues}, for which options to read.
    @return: the socket's values of those options, in the same form.
    @raise OSError: the kernel refused one.
    """
    values = [int(bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))),
              int(bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)))]
    if len(like) > 2:
        values += [sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                   sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)]
    return tuple(values)


class AcceptedSockets:
    """
    What every connection a TCP listener accepts takes from its listening
    socket, known once per listener instead of asked of each connection:

      - the TCP options (L{tcpOptionValues}) of the server's settings, set
        on the listening socket once.  A TCP socket returned by C{accept()}
        inherits C{TCP_NODELAY}, C{SO_KEEPALIVE}, C{SO_RCVBUF} and
        C{SO_SNDBUF} from the listening socket (Stevens, I{UNIX Network
        Programming} vol. 1, 3rd ed., section 7.4, "Socket States"; on Linux
        the new socket is a clone of the listening one, C{sk_clone_lock()}
        in C{net/core/sock.c}, which keeps C{TCP_KEEPIDLE} and
        C{TCP_KEEPINTVL} too, and C{tcp_create_openreq_child()} in
        C{net/ipv4/tcp_minisocks.c} starts the keepalive timer of a clone
        that has C{SO_KEEPALIVE}).  So a session whose settings are the
        server's makes no C{setsockopt} of its own.  The first accepted
        socket is checked (C{getsockopt}); where it lacks them (another
        system), every session sets its own again, as without this.
      - the local address of a listener bound to one interface (an accepted
        socket's local address is the listening address then), so that a
        session needs no C{getsockname}; C{None} for a wildcard address.
      - the default name of its sessions (C{tcp-session}).

    @ivar options: the settings (C{(tcpNoDelay, tcpKeepAlive,
        keepAlivePeriod)}) whose options every accepted socket has, or
        C{None} (unknown: each session sets its own).
    @ivar localAddress: the local address of every accepted socket, or
        C{None} (ask the connection).
    @ivar sessionName: the default name of the listener's sessions, or
        C{None} (derived from the connection).
    """

    __slots__ = ("options", "localAddress", "sessionName", "_values", "_checked")

    def __init__(self, options: tuple[bool, bool, float] | None = None, localAddress: Any = None,
                 sessionName: str | None = None) -> None:
        """
        @param options: the settings whose options the listening socket
            has, or C{None}.
        @param localAddress: the listening address if it names one
            interface, else C{None}.
        @param sessionName: the default name of the listener's sessions.
        """
        self.options = options
        self.localAddress = localAddress
        self.sessionName = sessionName
        self._values = None if options is None else tcpOptionValues(*options)
        self._checked = False

    @classmethod
    def preset(cls, port: Any, noDelay: bool, keepAlive: bool, period: float) -> AcceptedSockets | None:
        """
        Set a server's TCP options on a listening port's socket.

        @param port: a listening port (a TCP port has a C{socket} and
            C{getHost()}).
        @param noDelay: the server's C{tcpNoDelay}.
        @param keepAlive: its C{tcpKeepAlive}.
        @param period: its C{keepAlivePeriod}.
        @return: what its accepted sockets have, or C{None} for a port that
            is not a TCP port (UNIX, an endpoint of another kind).
        """
        sock = getattr(port, "socket", None)
        if not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        address = port.getHost()
        if not isinstance(address, (IPv4Address, IPv6Address)) or address.type != "TCP":
            return None
        local = None if address.host in ("0.0.0.0", "::", "") else address
        options: tuple[bool, bool, float] | None = (bool(noDelay), bool(keepAlive), float(period))
        try:
            setTcpOptions(sock, tcpOptionValues(*options))  # type: ignore[misc]
        except OSError:
            options = None
        return cls(options, local, "tcp-session")

    def optionsOf(self, transport: Any) -> tuple[bool, bool, float] | None:
        """
        @param transport: the transport of a connection this listener
            accepted (perhaps TLS-wrapped).
        @return: the settings whose options its socket has, or C{None}
            (unknown); the first call checks the socket.
        """
        if not self._checked and self._values is not None:
            self._checked = True
            sock = socketOf(transport)
            try:
                if sock is None or readTcpOptions(sock, self._values) != self._values:
                    self.options = self._values = None
            except OSError:
                self.options = self._values = None
        return self.options


def unsentBytes(fd: Any) -> int:
    """
    Bytes a Twisted L{FileDescriptor <twisted.internet.abstract.FileDescriptor>}
    holds and has not sent yet.

    @param fd: a TCP or UNIX transport (a C{FileDescriptor}).
    @return: the bytes in its write buffer.
    """
    # Twisted's FileDescriptor has no public count of its unsent bytes: the
    # bytes of writes not yet joined into dataBuffer are _tempDataLen.  This
    # module is the one that reads it (here, and inlined in writeThrough).
    return len(fd.dataBuffer) - fd.offset + fd._tempDataLen


def writeThrough(transport: Any, data: bytes) -> bool:
    """
    Write to a TCP or UNIX socket transport: when nothing waits in its
    buffer, send at once, as asyncio's and uvloop's transports do, rather
    than one reactor turn later (the turn costs two C{epoll_ctl} and one more
    C{epoll_wait} per reply of a ping-pong); what the kernel does not take
    goes to the transport's buffer, as with C{write}.

    @param transport: a L{twisted.internet.tcp.Connection}.
    @param data: the bytes.
    @return: whether bytes went to the transport's buffer (C{False}: the
        kernel took them all).
    """
    # (not unsentBytes(transport), inlined: this is the path of every
    # reply; see unsentBytes for the _tempDataLen read.)
    if (transport.connected and not transport.disconnecting and not transport._tempDataLen
            and len(transport.dataBuffer) == transport.offset):
        try:
            sent = transport.socket.send(data)
        except OSError:
            # EAGAIN, or an error (a reset, a socket shut for writing) that
            # Twisted's own write then meets and reports (or drops, as it
            # does after loseWriteConnection).
            sent = 0
        if sent == len(data):
            return False
        data = data[sent:]
    transport.write(data)
    return True


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
