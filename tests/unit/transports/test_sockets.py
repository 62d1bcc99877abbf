"""
Unit tests for L{txgetty.transports.sockets}: the bytes a transport holds
and the write that goes straight to the socket when none wait, on a real
(connected, local) socket pair under a stand-in for Twisted's TCP transport.
"""

from __future__ import annotations

import socket

from twisted.trial.unittest import SynchronousTestCase

from txgetty.transports.sockets import transportBacklog, unsentBytes, writeThrough


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
