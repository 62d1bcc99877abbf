"""
Unit tests for L{txgetty.transports.sockets}: the bytes a transport holds
and the write that goes straight to the socket when none wait, on a real
(connected, local) socket pair under a stand-in for Twisted's TCP transport;
the TCP options a listener's accepted sockets take from it, on real loopback
sockets.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.trial.unittest import SynchronousTestCase

from txgetty.transports.sockets import (
    AcceptedSockets,
    readTcpOptions,
    tcpOptionValues,
    transportBacklog,
    unsentBytes,
    writeThrough,
)


class _Transport:
    """
    What L{writeThrough} uses of a L{twisted.internet.tcp.Connection}: its
    socket, flags and buffer, and a C{write} that buffers.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.connected = True
        self.disconnecting = False
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self._tempDataLen += len(data)


class WriteThroughTests(SynchronousTestCase):
    """
    L{writeThrough} sends at once with an empty buffer, else buffers.
    """

    def setUp(self) -> None:
        self.local, self.peer = socket.socketpair()
        self.addCleanup(self.local.close)
        self.addCleanup(self.peer.close)
        self.local.setblocking(False)
        self.transport = _Transport(self.local)

    def test_sentAtOnce(self) -> None:
        """
        With nothing buffered, the bytes reach the peer without C{write}.
        """
        writeThrough(self.transport, b"hello")
        self.assertEqual(self.peer.recv(100), b"hello")
        self.assertEqual(self.transport.written, [])

    def test_behindBuffered(self) -> None:
        """
        With bytes already buffered, new ones go behind them (C{write}), so
        the order on the wire is kept.
        """
        self.transport.write(b"first")
        writeThrough(self.transport, b"second")
        self.assertEqual(self.transport.written, [b"first", b"second"])

    def test_restBuffered(self) -> None:
        """
        What the kernel does not take is handed to C{write}: together with
        what was sent it is the whole data, in order.
        """
        self.local.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        data = bytes(range(256)) * 4096
        writeThrough(self.transport, data)
        [rest] = self.transport.written
        self.assertTrue(0 < len(rest) < len(data))
        self.assertEqual(data[len(data) - len(rest):], rest)

    def test_closingUsesWrite(self) -> None:
        """
        A transport that is disconnecting or no longer connected gets the
        bytes through its own C{write} (which decides what happens to them).
        """
        self.transport.disconnecting = True
        writeThrough(self.transport, b"a")
        self.transport.disconnecting = False
        self.transport.connected = False
        writeThrough(self.transport, b"b")
        self.assertEqual(self.transport.written, [b"a", b"b"])

    def test_sendError(self) -> None:
        """
        A socket error on the send leaves the bytes to C{write} (Twisted's
        write then meets the error and reports it).
        """
        self.peer.close()
        self.local.shutdown(socket.SHUT_WR)
        writeThrough(self.transport, b"lost")
        self.assertEqual(self.transport.written, [b"lost"])


class UnsentBytesTests(SynchronousTestCase):
    """
    L{unsentBytes} and L{transportBacklog} count what a transport holds.
    """

    def test_counts(self) -> None:
        """
        The joined buffer past its offset plus the writes not joined yet.
        """
        local, peer = socket.socketpair()
        self.addCleanup(local.close)
        self.addCleanup(peer.close)
        transport = _Transport(local)
        transport.dataBuffer, transport.offset = b"abcdef", 2
        transport.write(b"xyz")
        self.assertEqual(unsentBytes(transport), 7)
        self.assertEqual(transportBacklog(transport), 7)


class _Port:
    """
    What L{AcceptedSockets.preset} uses of a Twisted listening port: its
    socket and C{getHost()}.
    """

    def __init__(self, sock: socket.socket, address: Any) -> None:
        self.socket = sock
        self._address = address

    def getHost(self) -> Any:
        return self._address


class _Accepted:
    """
    A connection's transport as L{socketOf} sees it: C{getHandle()}.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def getHandle(self) -> socket.socket:
        return self._sock


#: The server's defaults: tcpNoDelay, tcpKeepAlive, keepAlivePeriod.
DEFAULTS = (True, True, 180.0)


class AcceptedSocketsTests(SynchronousTestCase):
    """
    L{AcceptedSockets}: a server's TCP options set once on the listening
    socket, what the sockets it accepts inherit from it, checked on the
    first one.
    """

    def listen(self, host: str = "127.0.0.1") -> tuple[socket.socket, _Port]:
        """
        @return: a listening TCP socket on C{host} port 0 and a port
            object for it.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.bind((host, 0))
        sock.listen(8)
        return sock, _Port(sock, IPv4Address("TCP", *sock.getsockname()))

    def accept(self, listening: socket.socket) -> socket.socket:
        """
        @return: the server side of a new loopback connection to C{listening}.
        """
        client = socket.create_connection(("127.0.0.1", listening.getsockname()[1]))
        self.addCleanup(client.close)
        accepted, _ = listening.accept()
        self.addCleanup(accepted.close)
        return accepted

    def test_presetSetsTheListeningSocket(self) -> None:
        """
        C{preset} sets TCP_NODELAY, SO_KEEPALIVE and the keepalive times of
        the server's settings on the listening socket, and knows the
        listener's local address and session name.
        """
        listening, port = self.listen()
        accepted = AcceptedSockets.preset(port, *DEFAULTS)
        assert accepted is not None
        values = tcpOptionValues(*DEFAULTS)
        self.assertEqual(readTcpOptions(listening, values), values)
        self.assertEqual(accepted.options, DEFAULTS)
        self.assertEqual(accepted.localAddress, port.getHost())
        self.assertEqual(accepted.sessionName, "tcp-session")

    def test_acceptedSocketsInherit(self) -> None:
        """
        What this relies on, on the platform the tests run on (Linux: the
        accepted socket is a clone of the listening one): a socket returned
        by C{accept()} has the listening socket's TCP_NODELAY, SO_KEEPALIVE,
        TCP_KEEPIDLE and TCP_KEEPINTVL, for non-default values too.
        """
        listening, port = self.listen()
        settings = (True, True, 42.0)
        AcceptedSockets.preset(port, *settings)
        values = tcpOptionValues(*settings)
        self.assertEqual(readTcpOptions(self.accept(listening), values), values)

    def test_firstAcceptedSocketChecked(self) -> None:
        """
        C{optionsOf} checks the first accepted socket: where it has the
        options, every session of the listener is told so without a
        further C{getsockopt}.
        """
        listening, port = self.listen()
        accepted = AcceptedSockets.preset(port, *DEFAULTS)
        assert accepted is not None
        self.assertEqual(accepted.optionsOf(_Accepted(self.accept(listening))), DEFAULTS)
        self.assertEqual(accepted.optionsOf(object()), DEFAULTS)  # not checked again

    def test_notInheritedMeansUnknown(self) -> None:
        """
        Where the first accepted socket lacks the options (here: changed on
        the listening socket behind its back, as a system that does not
        copy them would look), the options are unknown from then on, so
        that every session sets its own.
        """
        listening, port = self.listen()
        accepted = AcceptedSockets.preset(port, *DEFAULTS)
        assert accepted is not None
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        self.assertIsNone(accepted.optionsOf(_Accepted(self.accept(listening))))
        self.assertIsNone(accepted.optionsOf(_Accepted(self.accept(listening))))
        self.assertIsNone(AcceptedSockets(DEFAULTS).optionsOf(object()))  # no socket to check

    def test_wildcardHasNoLocalAddress(self) -> None:
        """
        A listener on every interface has no one local address for its
        connections: each session asks its own.
        """
        _, port = self.listen("0.0.0.0")
        accepted = AcceptedSockets.preset(port, *DEFAULTS)
        assert accepted is not None
        self.assertIsNone(accepted.localAddress)

    def test_notTCP(self) -> None:
        """
        A UNIX listening socket, or a port without a socket, has nothing to
        preset.
        """
        path = self.mktemp()
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(unix.close)
        unix.bind(path)
        self.assertIsNone(AcceptedSockets.preset(_Port(unix, None), *DEFAULTS))
        self.assertIsNone(AcceptedSockets.preset(object(), *DEFAULTS))

    def test_values(self) -> None:
        """
        C{tcpOptionValues}: the keepalive times only with keepalive, whole
        seconds, at least 1, the interval at most 75 s.
        """
        self.assertEqual(tcpOptionValues(True, False, 180.0), (1, 0))
        self.assertEqual(tcpOptionValues(False, True, 180.5), (0, 1, 180, 75))
        self.assertEqual(tcpOptionValues(True, True, 0.2), (1, 1, 1, 1))
