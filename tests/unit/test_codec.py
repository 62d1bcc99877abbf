"""
Tests for L{txgetty.codec}: the ready-made codecs, getty's four read cases,
early rejection of oversize packets, and linear parsing.
"""

from __future__ import annotations

from typing import Any
import struct

from hypothesis import given, settings, strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty.codec import (
    DelimiterCodec,
    HelloCodec,
    LengthPrefixedCodec,
    LineCodec,
    RawCodec,
    codecFromString,
)
from txgetty.config import SessionConfig
from txgetty.errors import CodecError, ConfigError, PacketTooLargeError
from txgetty.interfaces import ICodec
from txgetty.testing import RecordingListener, sessionOnStringTransport


class _Limits:
    """
    The part of a session a codec looks at.
    """

    def __init__(self, maxMsgLen: int = 1 << 20) -> None:
        self.maxMsgLen = maxMsgLen
        self.readerState: Any = None


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    """
    @param data: bytes to split.
    @param cuts: split positions (any order, any range).
    @return: the pieces.
    """
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


class LengthPrefixedCodecTests(SynchronousTestCase):
    """
    Tests for L{LengthPrefixedCodec} and L{HelloCodec}.
    """

    def test_interface(self) -> None:
        """
        Every shipped codec provides L{ICodec}.
        """
        for codec in (HelloCodec(), LengthPrefixedCodec(2, "big"), LineCodec(), DelimiterCodec(b"\0"), RawCodec()):
            self.assertTrue(verifyObject(ICodec, codec))

    def test_helloFormat(self) -> None:
        """
        getty's hello framing is a 4-byte little-endian length and the payload.
        """
        self.assertEqual(HelloCodec().write(_Limits(), b"hello"), b"\x05\x00\x00\x00hello")

    def test_fourCases(self) -> None:
        """
        C{read} returns getty's cases: need a header, header parsed with the
        total length, and a complete packet with the bytes it used.
        """
        codec = HelloCodec()
        s = _Limits()
        self.assertEqual(codec.read(s, bytearray(b"\x05\x00")), (None, 0))
        self.assertEqual(codec.read(s, bytearray(b"\x05\x00\x00\x00he")), (None, 9))
        self.assertEqual(codec.read(s, bytearray(b"\x05\x00\x00\x00helloXX")), (b"hello", 9))

    def test_oversizeRejectedAtHeader(self) -> None:
        """
        A declared length above C{maxMsgLen} is refused from the header alone,
        and the message names the length, the limit and the setting.
        """
        codec = HelloCodec()
        with self.assertRaises(PacketTooLargeError) as ctx:
            codec.read(_Limits(1000), bytearray(b"\xff\xff\xff\xff"))
        message = str(ctx.exception)
        self.assertIn("4294967295", message)
        self.assertIn("1000", message)
        self.assertIn("maxMsgLen", message)
        self.assertEqual(ctx.exception.length, 0xFFFFFFFF)

    def test_allSizesAndOrders(self) -> None:
        """
        Headers of 1, 2, 4 and 8 bytes in both byte orders encode the payload
        length as C{struct} does.
        """
        for size, fmt in ((1, "B"), (2, "H"), (4, "I"), (8, "Q")):
            for order, prefix in (("big", ">"), ("little", "<")):
                codec = LengthPrefixedCodec(size, order)
                self.assertEqual(codec.write(_Limits(), b"abc"), struct.pack(prefix + fmt, 3) + b"abc")

    def test_badParameters(self) -> None:
        """
        Header sizes other than 1, 2, 4, 8 and unknown byte orders are refused
        with a L{ConfigError}.
        """
        self.assertRaises(ConfigError, LengthPrefixedCodec, 3)
        self.assertRaises(ConfigError, LengthPrefixedCodec, 4, "middle")

    def test_writeLimits(self) -> None:
        """
        A payload longer than a 1-byte header can say is refused when
        written; C{maxMsgLen} limits reading only, as in getty.
        """
        self.assertRaises(PacketTooLargeError, LengthPrefixedCodec(1).write, _Limits(), b"x" * 256)
        self.assertEqual(HelloCodec().write(_Limits(3), b"abcd"), b"\x04\x00\x00\x00abcd")
        self.assertEqual(LineCodec().write(_Limits(3), b"abcd"), b"abcd\n")

    def test_writeTypes(self) -> None:
        """
        Writers take bytes, bytearray, memoryview and text (as UTF-8), and
        refuse other types with a message naming the type.
        """
        codec = HelloCodec()
        for pkg in (b"\xc3\xa9", bytearray(b"\xc3\xa9"), memoryview(b"\xc3\xa9"), "é"):
            self.assertEqual(codec.write(_Limits(), pkg), b"\x02\x00\x00\x00\xc3\xa9")
        with self.assertRaises(TypeError) as ctx:
            codec.write(_Limits(), 42)
        self.assertIn("int", str(ctx.exception))

    def test_readPacketsKeepsGoodPacketsBeforeError(self) -> None:
        """
        C{readPackets} hands out the packets before an oversize header, and
        consumes them from the buffer, even though it raises.
        """
        codec = HelloCodec()
        buf = bytearray(b"\x01\x00\x00\x00a\x01\x00\x00\x00b\xff\xff\xff\xff")
        out: list[bytes] = []
        self.assertRaises(PacketTooLargeError, codec.readPackets, _Limits(100), buf, out)
        self.assertEqual(out, [b"a", b"b"])
        self.assertEqual(bytes(buf), b"\xff\xff\xff\xff")

    def test_readPacketsNeed(self) -> None:
        """
        C{readPackets} reports how many bytes the buffer must hold before the
        next packet can complete.
        """
        codec = HelloCodec()
        out: list[bytes] = []
        self.assertEqual(codec.readPackets(_Limits(), bytearray(b"\x05\x00"), out), 4)
        self.assertEqual(codec.readPackets(_Limits(), bytearray(b"\x05\x00\x00\x00ab"), out), 9)
        self.assertEqual(codec.readPackets(_Limits(), bytearray(), out), 0)
        self.assertEqual(out, [])

    @settings(max_examples=200, deadline=None)
    @given(
        size=st.sampled_from([1, 2, 4, 8]),
        order=st.sampled_from(["big", "little"]),
        payloads=st.lists(st.binary(max_size=255), max_size=20),
        cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
    )
    def test_roundTripAnyChunking(self, size: int, order: str, payloads: list[bytes], cuts: list[int]) -> None:
        """
        Whatever the header, payloads and the way the stream is cut, a session
        delivers exactly the payloads written, in order.
        """
        codec = LengthPrefixedCodec(size, order)
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, codec)
        stream = b"".join(codec.write(session, p) for p in payloads)
        for chunk in _chunks(stream, cuts):
            session.dataReceived(chunk)
        self.assertEqual(listener.messages, payloads)
        self.assertEqual(listener.errors, [])


class DelimiterCodecTests(SynchronousTestCase):
    """
    Tests for L{DelimiterCodec} and L{LineCodec}.
    """

    def test_lines(self) -> None:
        """
        L{LineCodec} reads LF and CRLF lines and writes LF lines.
        """
        listener = RecordingListener()
        session, transport = sessionOnStringTransport(listener, LineCodec())
        session.dataReceived(b"one\r\ntwo\nthr")
        session.dataReceived(b"ee\n")
        self.assertEqual(listener.messages, [b"one", b"two", b"three"])
        session.writePkg("hi")
        self.assertEqual(transport.value(), b"hi\n")

    def test_multiByteDelimiterAcrossChunks(self) -> None:
        """
        A delimiter of several bytes split between two reads is still found.
        """
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, DelimiterCodec(b"\r\n\r\n"))
        for piece in (b"a\r", b"\n\r", b"\nb\r\n", b"\r\n"):
            session.dataReceived(piece)
        self.assertEqual(listener.messages, [b"a", b"b"])

    def test_tooLongWithoutDelimiter(self) -> None:
        """
        More than C{maxMsgLen} bytes without a delimiter end the session with
        L{PacketTooLargeError}, before the delimiter ever comes.
        """
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, LineCodec(), config=SessionConfig(maxMsgLen=10))
        session.dataReceived(b"0123456789")
        self.assertEqual(listener.errors, [])
        session.dataReceived(b"A")
        self.assertEqual(len(listener.errors), 1)
        self.assertTrue(listener.errors[0].check(PacketTooLargeError))

    def test_writeRefusesDelimiterInside(self) -> None:
        """
        A packet containing the delimiter cannot be framed: L{CodecError}.
        """
        self.assertRaises(CodecError, LineCodec().write, _Limits(), b"a\nb")

    def test_emptyDelimiterRefused(self) -> None:
        """
        An empty delimiter is a L{ConfigError}.
        """
        self.assertRaises(ConfigError, DelimiterCodec, b"")

    @settings(max_examples=100, deadline=None)
    @given(
        lines=st.lists(st.binary(max_size=50).filter(lambda b: b"\n" not in b and not b.endswith(b"\r")), max_size=20),
        cuts=st.lists(st.integers(min_value=0, max_value=5_000), max_size=30),
    )
    def test_roundTripAnyChunking(self, lines: list[bytes], cuts: list[int]) -> None:
        """
        Lines written by L{LineCodec} come back exactly, however they are cut.
        """
        codec = LineCodec()
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, codec)
        stream = b"".join(codec.write(session, line) for line in lines)
        for chunk in _chunks(stream, cuts):
            session.dataReceived(chunk)
        self.assertEqual(listener.messages, lines)


class RawCodecTests(SynchronousTestCase):
    """
    Tests for L{RawCodec}.
    """

    def test_chunksAsPackets(self) -> None:
        """
        Every read is a packet, cut at C{maxMsgLen}.
        """
        listener = RecordingListener()
        session, transport = sessionOnStringTransport(listener, RawCodec(), config=SessionConfig(maxMsgLen=4))
        session.dataReceived(b"abcdefghij")
        self.assertEqual(listener.messages, [b"abcd", b"efgh", b"ij"])
        session.writePkg(b"xyz")
        self.assertEqual(transport.value(), b"xyz")


class LinearParsingTests(SynchronousTestCase):
    """
    Parsing is linear in the bytes received, whatever their chunking.
    """

    def test_oneByteChunksCallReaderRarely(self) -> None:
        """
        A getty-style reader fed one big packet one byte at a time is called
        a handful of times, not once per byte: after it announced the total
        length, the session waits until that many bytes are there.
        """
        calls = []
        codec = HelloCodec()

        class Counting:
            def read(self, session: Any, data: bytearray) -> Any:
                calls.append(len(data))
                return codec.read(session, data)

            def write(self, session: Any, pkg: Any) -> bytes:
                return codec.write(session, pkg)

        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, Counting())
        payload = b"x" * 100_000
        for b in codec.write(session, payload):
            session.dataReceived(bytes([b]))
        self.assertEqual(listener.messages, [payload])
        self.assertLessEqual(len(calls), 6)

    def test_lineScanResumes(self) -> None:
        """
        L{DelimiterCodec} resumes its scan where it stopped: a long line in
        tiny pieces is scanned about once (measured by the bytes C{find}
        looks at).
        """
        scanned = []

        codec = LineCodec()
        original = codec._find

        def find(session: Any, data: bytearray, start: int) -> int:
            scanned.append(len(data) - start - (session.readerState or 0))
            return original(session, data, start)

        codec._find = find  # type: ignore[method-assign]
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, codec)
        line = b"y" * 20_000
        for i in range(0, len(line), 7):
            session.dataReceived(line[i:i + 7])
        session.dataReceived(b"\n")
        self.assertEqual(listener.messages, [line])
        self.assertLess(sum(scanned), 3 * len(line))

    def test_manyTinyPacketsInOneChunk(self) -> None:
        """
        A megabyte of 1-byte packets in one read is parsed in one pass (the
        buffer is consumed from the front once, not per packet); they reach
        onMessage maxPacketsPerTurn at once, the rest from the clock's next
        turns, all in order.
        """
        codec = HelloCodec()
        listener = RecordingListener()
        clock = Clock()
        session, _ = sessionOnStringTransport(listener, codec, clock=clock)
        stream = b"\x01\x00\x00\x00z" * 200_000
        session.dataReceived(stream)
        self.assertEqual(session.packetsRead, 200_000)
        self.assertEqual(len(listener.messages), session.maxPacketsPerTurn)
        clock.advance(0)  # (a Clock runs the turns it schedules in one advance)
        self.assertEqual(listener.messages, [b"z"] * 200_000)


class CodecFromStringTests(SynchronousTestCase):
    """
    Tests for L{codecFromString}.
    """

    def test_forms(self) -> None:
        """
        Every documented form gives the matching codec.
        """
        hello = codecFromString("hello")
        self.assertEqual((hello.size, hello.byteorder), (4, "little"))
        c = codecFromString("length:2")
        self.assertEqual((c.size, c.byteorder), (2, "big"))
        c = codecFromString("length:8:little")
        self.assertEqual((c.size, c.byteorder), (8, "little"))
        self.assertIsInstance(codecFromString("line"), LineCodec)
        self.assertEqual(codecFromString("delimiter:00").delimiter, b"\0")
        self.assertIsInstance(codecFromString("raw"), RawCodec)

    def test_errorsListForms(self) -> None:
        """
        An unknown or malformed spec raises L{ConfigError} listing the
        accepted forms.
        """
        for bad in ("nope", "length:3", "length:x", "delimiter:zz", "hello:1", "length"):
            with self.assertRaises(ConfigError) as ctx:
                codecFromString(bad)
            self.assertIn("length:SIZE", str(ctx.exception))
