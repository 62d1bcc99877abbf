"""
Unit tests for L{txgetty.session.reading}: the one-packet reader loop, the
reading of one message of a message transport, and the messages waiting.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from txgetty.errors import CodecError, PacketTooLargeError
from txgetty.session.reading import WaitingMessages, readOneByOne, readOneMessage

from ...support.logs import captureEvents


class _Pairs:
    """
    A one-packet reader of two-byte packets (C{read} only).
    """

    def read(self, session: Any, buf: Any) -> tuple[Any, int]:
        if len(buf) < 2:
            return None, 2
        return bytes(buf[:2]), 2


class _Viewing(_Pairs):
    """
    A reader that keeps a memoryview of the buffer, as some codecs do.
    """

    def __init__(self) -> None:
        self.views: list[memoryview] = []

    def read(self, session: Any, buf: Any) -> tuple[Any, int]:
        self.views.append(memoryview(buf))
        return super().read(session, buf)


class ReadOneByOneTests(SynchronousTestCase):
    """
    L{readOneByOne} cuts packets with C{read} and checks its contract.
    """

    def test_packetsAndRest(self) -> None:
        """
        Whole packets go to C{out}, the incomplete rest stays in the buffer,
        and the bytes it needs are returned with the same buffer.
        """
        buf, out = bytearray(b"aabbc"), []
        need, rest = readOneByOne(None, _Pairs(), 10, buf, out)
        self.assertEqual((out, need, bytes(buf)), ([b"aa", b"bb"], 2, b"c"))
        self.assertIs(rest, buf)

    def test_allRead(self) -> None:
        """
        A buffer of whole packets ends empty and needs nothing more.
        """
        buf, out = bytearray(b"aabb"), []
        self.assertEqual(readOneByOne(None, _Pairs(), 10, buf, out)[0], 0)
        self.assertEqual(buf, b"")

    def test_tooLarge(self) -> None:
        """
        A packet above the limit raises L{PacketTooLargeError}.
        """
        self.assertRaises(PacketTooLargeError, readOneByOne, None, _Pairs(), 1, bytearray(b"aa"), [])

    def test_brokenContract(self) -> None:
        """
        A reader that returns no packet although the bytes it asked for are
        there, or a length beyond the buffer, raises L{CodecError}.
        """
        class Stubborn:
            def read(self, session: Any, buf: Any) -> tuple[Any, int]:
                return None, 1

        class Greedy:
            def read(self, session: Any, buf: Any) -> tuple[Any, int]:
                return b"x", len(buf) + 1

        self.assertRaises(CodecError, readOneByOne, None, Stubborn(), 10, bytearray(b"a"), [])
        self.assertRaises(CodecError, readOneByOne, None, Greedy(), 10, bytearray(b"a"), [])

    def test_viewKept(self) -> None:
        """
        If the reader keeps a memoryview of the buffer (so it cannot shrink),
        reading goes on in a copy, which is returned as the buffer now.
        """
        buf, out = bytearray(b"aabbc"), []
        need, rest = readOneByOne(None, _Viewing(), 10, buf, out)
        self.assertEqual(out, [b"aa", b"bb"])
        self.assertIsNot(rest, buf)
        self.assertEqual((bytes(rest), need), (b"c", 2))


class ReadOneMessageTests(SynchronousTestCase):
    """
    L{readOneMessage} reads one message whole, or as whole packets.
    """

    def test_readWhole(self) -> None:
        """
        A codec's C{readMessage} is used when there is one.
        """
        out: list[Any] = []
        failure = readOneMessage(None, lambda s, data, o: o.append(data.upper()), None, b"hi", out)
        self.assertIsNone(failure)
        self.assertEqual(out, [b"HI"])

    def test_wholePackets(self) -> None:
        """
        Without C{readMessage}, C{readPackets} reads it; a message of whole
        packets gives them all and no failure.
        """
        out: list[Any] = []
        read = lambda s, buf, o: readOneByOne(s, _Pairs(), 10, buf, o)[0]  # noqa: E731
        self.assertIsNone(readOneMessage(None, None, read, b"aabb", out))
        self.assertEqual(out, [b"aa", b"bb"])

    def test_incompletePacket(self) -> None:
        """
        A message that ends in an incomplete packet is a L{CodecError} that
        names the transport, the packets before it are kept.
        """
        class Session:
            transport = StringTransport()

        out: list[Any] = []
        read = lambda s, buf, o: readOneByOne(s, _Pairs(), 10, buf, o)[0]  # noqa: E731
        failure = readOneMessage(Session(), None, read, b"aab", out)
        assert failure is not None
        self.assertIsInstance(failure.value, CodecError)
        self.assertIn("StringTransport", str(failure.value))
        self.assertEqual(out, [b"aa"])

    def test_codecRaises(self) -> None:
        """
        What the codec raises is returned as a failure, not raised.
        """
        def broken(s: Any, data: bytes, o: list) -> None:
            raise ValueError("bad")

        failure = readOneMessage(None, broken, None, b"x", [])
        assert failure is not None
        self.assertIsInstance(failure.value, ValueError)


class WaitingMessagesTests(SynchronousTestCase):
    """
    L{WaitingMessages} keeps messages in order up to a limit, then drops.
    """

    def test_holdInOrder(self) -> None:
        """
        Messages under the limit wait in arrival order.
        """
        waiting = WaitingMessages()
        waiting.hold(b"a", 2, None)
        waiting.hold(b"b", 2, None)
        self.assertEqual(list(waiting), [b"a", b"b"])

    def test_dropPastLimit(self) -> None:
        """
        A message past the limit is dropped, with one info line saying how
        many wait (C{backlogHighMark}).
        """
        waiting = WaitingMessages()
        events = captureEvents(self)
        waiting.hold(b"a", 1, "s")
        waiting.hold(b"b", 1, "s")
        self.assertEqual(list(waiting), [b"a"])
        drops = [e for e in events if "dropped a message" in e.get("log_format", "")]
        self.assertEqual(len(drops), 1)
        self.assertEqual(drops[0]["count"], 1)
