"""
Tests for the RPC wire frame (L{txgetty.rpc.frame}), its serializers and
compressors (L{txgetty.rpc.serializers}), and the request/response body
helpers of the server: exact layout, round trips over arbitrary head maps,
bodies and chunkings (hypothesis), and a clear error for every broken
header, head map or body.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
import struct

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty.errors import CodecError, PacketTooLargeError
from txgetty.interfaces import ICodec
from txgetty.rpc import Frame, RpcCodec, frame as F


#: A stand-in session for the codec: only C{maxMsgLen} is read.
LIMITS = SimpleNamespace(maxMsgLen=1024 * 1024)


def header(*, magic: int = F.MAGIC, version: int = F.VERSION, full: int = 16, head: int = 16,
           type: int = F.REQUEST, ser: int = 1, comp: int = 0, rid: int = 1) -> bytes:
    """
    @return: a 16-byte frame header with the given fields.
    """
    return struct.pack(">HBIHBBBI", magic, version, full, head, type, ser, comp, rid)


def entry(key: bytes, value: bytes) -> bytes:
    """
    @return: one head map entry on the wire.
    """
    return struct.pack(">H", len(key)) + key + struct.pack(">H", len(value)) + value


def readAll(data: bytes, chunks: list[int] | None = None, limits: Any = LIMITS) -> tuple[list[Frame], bytearray]:
    """
    Feed bytes to L{RpcCodec.readPackets} as a session would, chunk by
    chunk.

    @param data: the bytes.
    @param chunks: the sizes of the pieces (cycled); all at once if C{None}.
    @param limits: the session stand-in.
    @return: the frames read and what is left in the buffer.
    """
    codec, buf, out = RpcCodec(), bytearray(), []
    sizes = chunks or [len(data) or 1]
    off = i = 0
    while off < len(data):
        step = sizes[i % len(sizes)]
        buf += data[off:off + step]
        off += step
        i += 1
        codec.readPackets(limits, buf, out)
    return out, buf


heads = st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=6)
frames = st.builds(
    Frame,
    type=st.sampled_from(sorted(F.TYPES)),
    requestId=st.integers(0, 2**32 - 1),
    head=heads,
    body=st.binary(max_size=300),
    serializer=st.integers(0, 255),
    compressor=st.integers(0, 255),
)


class LayoutTests(SynchronousTestCase):
    """
    The frame's bytes are exactly those of the protocol description.
    """

    def test_bytes(self) -> None:
        """
        Every header field is big-endian at its offset, head entries are
        u16-length-prefixed UTF-8, the body comes last.
        """
        frame = Frame(F.ONEWAY, 0x01020304, {"service": "Calc", "é": "ü"}, b"[1]", serializer=2, compressor=1)
        head = entry(b"service", b"Calc") + entry("é".encode(), "ü".encode())
        expected = header(full=16 + len(head) + 3, head=16 + len(head), type=2, ser=2, comp=1,
                          rid=0x01020304) + head + b"[1]"
        self.assertEqual(frame.encode(), expected)
        self.assertEqual(expected[:3], b"\xda\xda\x01")

    def test_emptyHeadAndBody(self) -> None:
        """
        A heartbeat with no head map and no body is just the 16-byte header.
        """
        data = Frame(F.HEARTBEAT_REQUEST, 7).encode()
        self.assertEqual(data, header(type=3, rid=7))

    def test_responseBytes(self) -> None:
        """
        The server's fast path for successful responses gives the same bytes
        as a L{Frame} with an empty head map.
        """
        self.assertEqual(F.responseBytes(9, b'"ok"', 1, 2), Frame(F.RESPONSE, 9, {}, b'"ok"', 1, 2).encode())

    def test_codecInterface(self) -> None:
        """
        L{RpcCodec} is a txgetty codec; it writes frames and frame bytes and
        refuses anything else.
        """
        codec = RpcCodec()
        self.assertTrue(verifyObject(ICodec, codec))
        frame = Frame(F.REQUEST, 1, {"a": "b"}, b"x")
        self.assertEqual(codec.write(None, frame), frame.encode())
        self.assertEqual(codec.write(None, b"raw"), b"raw")
        with self.assertRaises(TypeError) as ctx:
            codec.write(None, "text")
        self.assertIn("Frame", str(ctx.exception))

    def test_readStages(self) -> None:
        """
        L{RpcCodec.read} follows getty's contract: nothing until the 16-byte
        header, then the full length, then the frame.
        """
        codec = RpcCodec()
        data = Frame(F.REQUEST, 5, {"k": "v"}, b"body").encode()
        self.assertEqual(codec.read(LIMITS, bytearray(data[:15])), (None, 0))
        self.assertEqual(codec.read(LIMITS, bytearray(data[:-1])), (None, len(data)))
        self.assertEqual(codec.read(LIMITS, bytearray(data + b"\xda")),
                         (Frame(F.REQUEST, 5, {"k": "v"}, b"body"), len(data)))

    def test_readPacketsLeavesTheRest(self) -> None:
        """
        L{RpcCodec.readPackets} cuts every complete frame, keeps a partial
        one and says how many bytes it needs.
        """
        one, two = Frame(F.REQUEST, 1, {"a": "1"}, b"x"), Frame(F.ONEWAY, 2, {}, b"yy")
        data = one.encode() + two.encode()
        buf, out = bytearray(data[:-1]), []
        need = RpcCodec().readPackets(LIMITS, buf, out)
        self.assertEqual(out, [one])
        self.assertEqual(bytes(buf), two.encode()[:-1])
        self.assertEqual(need, len(two.encode()))
        self.assertEqual(RpcCodec().readPackets(LIMITS, bytearray(b"\xda"), []), F.HEADER_SIZE)

    def test_frameEquality(self) -> None:
        """
        Frames are equal when every field is; the repr names the type.
        """
        self.assertEqual(Frame(F.REQUEST, 1, {"a": "b"}, b"x"), Frame(F.REQUEST, 1, {"a": "b"}, b"x"))
        self.assertNotEqual(Frame(F.REQUEST, 1), Frame(F.REQUEST, 1, compressor=1))
        self.assertNotEqual(Frame(F.REQUEST, 1), b"")
        self.assertIn("request #1", repr(Frame(F.REQUEST, 1)))


class PropertyTests(SynchronousTestCase):
    """
    Round trips over arbitrary frames and chunkings.
    """

    @settings(max_examples=200, deadline=None)
    @given(frames)
    def test_roundTrip(self, frame: Frame) -> None:
        """
        Any frame (any type, id, head map, body and codes) reads back equal,
        with L{RpcCodec.read} and with L{RpcCodec.readPackets}.
        """
        data = frame.encode()
        self.assertEqual(RpcCodec().read(LIMITS, bytearray(data)), (frame, len(data)))
        self.assertEqual(readAll(data), ([frame], bytearray()))

    @settings(max_examples=150, deadline=None)
    @given(st.lists(frames, min_size=1, max_size=8), st.lists(st.integers(1, 64), min_size=1, max_size=8))
    def test_anyChunking(self, sent: list[Frame], chunks: list[int]) -> None:
        """
        A stream of frames cut into arbitrary pieces gives the same frames,
        in order, and leaves nothing behind.
        """
        got, rest = readAll(b"".join(f.encode() for f in sent), chunks)
        self.assertEqual(got, sent)
        self.assertEqual(rest, bytearray())

    @settings(max_examples=200, deadline=None)
    @given(heads)
    def test_headMap(self, head: dict[str, str]) -> None:
        """
        Any head map of text survives encoding, also when decoded twice
        (the cache hands out one read-only map, which nobody can change).
        """
        data = F.encodeHead(head)
        first = F.decodeHead(data)
        with self.assertRaises(TypeError):
            first["mutated"] = "yes"  # type: ignore[index]
        self.assertEqual(F.decodeHead(data), head)

    @settings(max_examples=100, deadline=None)
    @given(st.binary(max_size=200))
    def test_garbageNeverCrashes(self, data: bytes) -> None:
        """
        Arbitrary bytes either read as frames or raise L{CodecError}: no
        other exception escapes the codec.
        """
        try:
            readAll(data, [7])
        except CodecError:
            pass


class HeaderErrorTests(SynchronousTestCase):
    """
    A bad header is refused from its 16 bytes, with a message saying what
    is wrong.
    """

    def assertRefused(self, data: bytes, *needles: str, error: type = CodecError, limits: Any = LIMITS) -> None:
        """
        Both read paths refuse C{data} with C{error}, whose message holds
        every needle.
        """
        for attempt in (lambda: RpcCodec().read(limits, bytearray(data)),
                        lambda: RpcCodec().readPackets(limits, bytearray(data), [])):
            with self.assertRaises(error) as ctx:
                attempt()
            for needle in needles:
                self.assertIn(needle, str(ctx.exception))

    def test_badMagic(self) -> None:
        """
        Another protocol's bytes are refused as not an RPC frame.
        """
        self.assertRefused(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad magic 0x4745", "0xdada")

    def test_badVersion(self) -> None:
        """
        An unknown protocol version is refused, naming both versions.
        """
        self.assertRefused(header(version=2), "version 2", "version 1")

    def test_unknownType(self) -> None:
        """
        An unknown message type is refused, listing the known ones.
        """
        self.assertRefused(header(type=99), "unknown message type 99", "0 request", "4 heartbeat response")

    def test_badLengths(self) -> None:
        """
        A head length below 16 or beyond the full length is refused.
        """
        self.assertRefused(header(full=16, head=15), "head length 15")
        self.assertRefused(header(full=20, head=24) + b"\0" * 8, "head length 24", "full length 20")
        self.assertRefused(header(full=10, head=16), "full length 10")

    def test_tooLargeFromHeader(self) -> None:
        """
        A frame declaring more than C{maxMsgLen} bytes is refused from its
        header alone, before its body arrives; the message names the
        length, the limit and the setting.
        """
        limits = SimpleNamespace(maxMsgLen=1000)
        self.assertRefused(header(full=1001), "1001 bytes", "1000 bytes", "maxMsgLen",
                           error=PacketTooLargeError, limits=limits)
        frame = Frame(F.REQUEST, 1, {}, b"x" * (1000 - 16))
        self.assertEqual(readAll(frame.encode(), limits=limits)[0], [frame])


class HeadMapErrorTests(SynchronousTestCase):
    """
    A head map that does not parse, or cannot be encoded, gives a clear
    error.
    """

    def framed(self, head: bytes) -> bytes:
        """
        @return: a frame with the given head map bytes and no body.
        """
        return header(full=16 + len(head), head=16 + len(head)) + head

    def test_cutShort(self) -> None:
        """
        A head length that ends inside an entry's length field is refused.
        """
        with self.assertRaises(CodecError) as ctx:
            RpcCodec().read(LIMITS, bytearray(self.framed(entry(b"k", b"v") + b"\x00")))
        self.assertIn("cut short", str(ctx.exception))

    def test_runsPast(self) -> None:
        """
        An entry longer than the head map is refused.
        """
        with self.assertRaises(CodecError) as ctx:
            readAll(self.framed(b"\x00\x09key"))
        self.assertIn("runs past the head length", str(ctx.exception))

    def test_keyWithoutValue(self) -> None:
        """
        A key with no value after it is refused.
        """
        with self.assertRaises(CodecError):
            readAll(self.framed(struct.pack(">H", 1) + b"k"))

    def test_notUtf8(self) -> None:
        """
        An entry that is not UTF-8 is refused.
        """
        with self.assertRaises(CodecError) as ctx:
            readAll(self.framed(entry(b"k", b"\xff\xfe")))
        self.assertIn("not UTF-8", str(ctx.exception))

    def test_encodeNonText(self) -> None:
        """
        Head map entries must be text: numbers and bytes are refused with
        the entry in the message.
        """
        for head in ({"timeout-ms": 5}, {b"k": "v"}, {"k": ["list"]}):
            with self.assertRaises(CodecError) as ctx:
                Frame(F.REQUEST, 1, head).encode()
            self.assertIn("must be text", str(ctx.exception))

    def test_encodeTooLong(self) -> None:
        """
        An entry over 65535 bytes, or a head map too long for the u16 head
        length, cannot be encoded.
        """
        with self.assertRaises(CodecError) as ctx:
            Frame(F.REQUEST, 1, {"k": "x" * 65536}).encode()
        self.assertIn("longer than 65535", str(ctx.exception))
        with self.assertRaises(CodecError) as ctx:
            Frame(F.REQUEST, 1, {str(i): "x" * 30000 for i in range(3)}).encode()
        self.assertIn("too large", str(ctx.exception))
