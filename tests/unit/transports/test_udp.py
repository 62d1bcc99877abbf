"""
Unit tests of the UDP transport (L{txgetty.transports.udp}) on a fake
reactor: idle expiry and codecs of datagrams.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import TestCase

from txgetty.errors import CodecError, ConnectionClosedLocally, PeerIdleError
from txgetty.transports.udp import DEFAULT_PEER_IDLE

from ...support.logs import captureEvents
from ...support.net import helloFrame
from ...support.transports import FakeUDPServer


PEER = ("10.0.0.1", 5000)


class IdleExpiryTests(TestCase):
    """
    A UDP peer's session opens on its first datagram and closes cleanly
    after readIdleTimeout of silence (fake clock).
    """

    def test_firstDatagramOpens(self) -> None:
        """
        No session exists before a peer's first datagram; that datagram opens
        a session named udp-session for the peer's address, is delivered, and
        the echo goes back to that address.
        """
        fake = FakeUDPServer(self)
        self.assertEqual(fake.sessions, [])
        fake.receive(helloFrame(b"hi"))
        [session] = fake.sessions
        self.assertEqual(fake.listeners[0].names(), ["open", "message"])
        self.assertEqual(session.remoteAddress, IPv4Address("UDP", *PEER))
        self.assertEqual(session.name, "udp-session")
        self.assertEqual(fake.port.written, [(helloFrame(b"hi"), PEER)])
        self.assertEqual(fake.protocol.peers, {PEER: session})
        self.assertEqual(fake.server.sessions(), [session])

    def test_idleExpiryIsClean(self) -> None:
        """
        Each datagram restarts the idle time; after readIdleTimeout of
        silence the session gets onClose alone (no onError) with closeReason
        L{PeerIdleError}, and the peer is forgotten.
        """
        fake = FakeUDPServer(self, readIdleTimeout=5)
        fake.receive(helloFrame(b"1"))
        fake.reactor.advanceBy(3)
        fake.receive(helloFrame(b"2"))
        fake.reactor.advanceBy(4.5)
        [session] = fake.sessions
        listener = fake.listeners[0]
        self.assertEqual(listener.names(), ["open", "message", "message"])
        fake.reactor.advanceBy(1)
        self.assertEqual(listener.names(), ["open", "message", "message", "close"])
        self.assertEqual(listener.errors, [])
        self.assertTrue(session.closeReason.check(PeerIdleError))
        self.assertIn("readIdleTimeout is 5 s", session.closeReason.getErrorMessage())
        self.assertEqual((fake.protocol.peers, fake.server.sessions(), fake.server.closed), ({}, [], 1))

    def test_defaultPeerIdle(self) -> None:
        """
        With readIdleTimeout 0 (off for streams) a UDP peer still expires,
        after L{DEFAULT_PEER_IDLE} seconds.
        """
        fake = FakeUDPServer(self)
        fake.receive(helloFrame(b"x"))
        [session] = fake.sessions
        self.assertEqual(session.readIdleTimeout, DEFAULT_PEER_IDLE)
        fake.reactor.advanceBy(DEFAULT_PEER_IDLE - 1, step=0.5)
        self.assertFalse(session.isClosed)
        fake.reactor.advanceBy(1.5)
        names = [n for n in fake.listeners[0].names() if n != "cron"]
        self.assertEqual(names, ["open", "message", "close"])
        self.assertTrue(session.closeReason.check(PeerIdleError))

    def test_peerReturns(self) -> None:
        """
        A peer that sends again after its session expired gets a new session
        (a second onOpen on a new listener).
        """
        fake = FakeUDPServer(self, readIdleTimeout=1)
        fake.receive(helloFrame(b"a"))
        fake.reactor.advanceBy(1.5)
        fake.receive(helloFrame(b"b"))
        self.assertEqual(len(fake.sessions), 2)
        self.assertEqual(fake.listeners[0].names(), ["open", "message", "close"])
        self.assertEqual(fake.listeners[1].names(), ["open", "message"])
        self.assertEqual(fake.protocol.peers, {PEER: fake.sessions[1]})

    def test_cronUntilExpiry(self) -> None:
        """
        onCron runs every cronPeriod while the peer's session is open, and
        never after its onClose.
        """
        fake = FakeUDPServer(self, readIdleTimeout=2, cronPeriod=0.5)
        fake.receive(helloFrame(b"a"))
        fake.reactor.advanceBy(5)
        names = fake.listeners[0].names()
        self.assertEqual(names[-1], "close")
        self.assertIn(names.count("cron"), (3, 4))

    def test_serverStop(self) -> None:
        """
        Stopping the server closes every peer's session cleanly, with the
        reason "the server is stopping".
        """
        fake = FakeUDPServer(self)
        fake.receive(helloFrame(b"a"), ("10.0.0.1", 1))
        fake.receive(helloFrame(b"b"), ("10.0.0.2", 2))
        d = fake.server.stopService()
        fake.reactor.advanceBy(0.1)
        self.successResultOf(d)
        for session, listener in zip(fake.sessions, fake.listeners):
            self.assertEqual(listener.names(), ["open", "message", "close"])
            self.assertTrue(session.closeReason.check(ConnectionClosedLocally))
        self.assertFalse(fake.port.listening)


class DatagramCodecTests(TestCase):
    """
    One datagram is one read of the codec: it must hold whole packets.
    """

    def test_severalPacketsInOneDatagram(self) -> None:
        """
        A datagram holding three hello frames gives three onMessage calls, in
        order, and three echo datagrams.
        """
        fake = FakeUDPServer(self)
        fake.receive(helloFrame(b"a") + helloFrame(b"") + helloFrame(b"ccc"))
        self.assertEqual(fake.listeners[0].messages, [b"a", b"", b"ccc"])
        self.assertEqual([d for d, _ in fake.port.written], [helloFrame(b"a"), helloFrame(b""), helloFrame(b"ccc")])

    def test_incompleteFrame(self) -> None:
        """
        A datagram that ends inside a hello frame is a L{CodecError} given to
        onError (the complete packets before it are delivered first), then
        the session closes.
        """
        fake = FakeUDPServer(self)
        fake.receive(helloFrame(b"ok") + helloFrame(b"0123456789")[:7])
        fake.reactor.advanceBy(0.1)
        [session] = fake.sessions
        listener = fake.listeners[0]
        self.assertEqual(listener.names(), ["open", "message", "error", "close"])
        self.assertEqual(listener.messages, [b"ok"])
        [failure] = listener.errors
        self.assertTrue(failure.check(CodecError))
        self.assertIn("incomplete packet", failure.getErrorMessage())
        self.assertIs(session.closeReason, failure)
        self.assertEqual(fake.protocol.peers, {})


class DropLogTests(TestCase):
    """
    A dropped datagram's log line (docs/observability.md, "Logs").
    """

    def test_oversizeFields(self) -> None:
        """
        The first datagram larger than C{maxMsgLen} is logged once per
        listener, at warn, with C{kind}, C{endpoint} (the listener's
        description), C{peer} and C{limit}; later ones are only counted.
        """
        events = captureEvents(self)
        fake = FakeUDPServer(self, maxMsgLen=100)
        limit = fake.protocol.maxDatagram
        for _ in range(2):
            fake.receive(b"x" * (limit + 1))
        [event] = [e for e in events if e.get("kind") == "oversize"]
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(
            {k: event[k] for k in ("endpoint", "peer", "limit")},
            {"endpoint": "udp:9999", "peer": "udp:10.0.0.1:5000", "limit": limit},
        )
        self.assertEqual(fake.protocol.drops["oversize"], 2)
        self.assertIn(f"larger than {limit} bytes", formatEvent(event))
