"""
Tests for the RPC wire frame (L{txgetty.rpc.frame}), its serializers and
compressors (L{txgetty.rpc.serializers}), and the request/response body
helpers of the server: exact layout, round trips over arbitrary head maps,
bodies and chunkings (hypothesis), and a clear error for every broken
header, head map or body.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
import json as stdjson
import struct
import zlib
from types import SimpleNamespace
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty.errors import CodecError, PacketTooLargeError
from txgetty.interfaces import ICodec
from txgetty.rpc import Frame, FrameError, RpcCodec
from txgetty.rpc import frame as F
from txgetty.rpc import serializers as S
from txgetty.rpc.body import decodeArguments, encodeBody

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


@contextmanager
def _without(name: str) -> Iterator[None]:
    """
    Run a block with one of the serializers module's orjson functions
    unset (as without the extra); restored after each block, so that every
    hypothesis example of a test sees both (trial's C{patch} would last
    until the test's end).

    @param name: C{_orjsonDumps} or C{_orjsonLoads}.
    """
    saved = getattr(S, name)
    setattr(S, name, None)
    try:
        yield
    finally:
        setattr(S, name, saved)


def _refuseConstant(name: str) -> None:
    """
    @raise ValueError: always (RFC 8259 has no NaN or Infinity).
    """
    raise ValueError(name)


def _finite(text: str) -> float:
    """
    @return: the float of a JSON number.
    @raise ValueError: it is beyond a 64-bit float.
    """
    value = float(text)
    if value in (float("inf"), -float("inf")):
        raise ValueError(text)
    return value


def strictReference(data: bytes) -> str:
    """
    @param data: JSON text to read.
    @return: the C{repr} of what the standard decoder reads from it in the
        form docs/rpc-protocol.md gives (RFC 8259: no NaN or Infinity,
        finite floats; raw control characters in strings accepted), or
        C{"refused"}.
    """
    try:
        return repr(stdjson.loads(data.decode("utf-8"), strict=False, parse_constant=_refuseConstant,
                                  parse_float=_finite))
    except ValueError:
        return "refused"


def readOrRefuse(data: bytes) -> str:
    """
    @param data: JSON text.
    @return: the C{repr} of what txgetty's JSON serializer reads from it, or
        C{"refused"} if it raises L{ValueError}.
    """
    try:
        return repr(S._jsonLoads(data))
    except ValueError:
        return "refused"


class SerializerTests(SynchronousTestCase):
    """
    Serializers and compressors by code and name, and the errors for
    unknown or missing ones.
    """

    def test_lookup(self) -> None:
        """
        Built-ins are found by code and by name.
        """
        self.assertIs(S.serializer(1), S.serializer("json"))
        self.assertIs(S.serializer(2), S.serializer("msgpack"))
        self.assertIs(S.compressor(1), S.compressor("gzip"))
        self.assertIs(S.compressor(2), S.compressor("zlib"))
        self.assertEqual(S.compressor("none").code, 0)

    def test_json(self) -> None:
        """
        JSON is compact UTF-8 (no ASCII escapes) and reads surrounding
        whitespace too.
        """
        json = S.serializer("json")
        self.assertEqual(json.dumps({"a": [1, "é"]}), '{"a":[1,"é"]}'.encode())
        self.assertEqual(json.loads(b' {"a": 1} '), {"a": 1})
        self.assertEqual(json.loads("[1,\"é\"]".encode()), [1, "é"])
        with self.assertRaises(ValueError):
            json.loads(b"[1,")

    @settings(max_examples=300, deadline=None)
    @given(st.text())
    def test_jsonText(self, text: str) -> None:
        """
        A text result is the JSON string of that text whether orjson (the
        extra) or the standard encoder writes it: the standard decoder reads
        back the same text, and both write the same bytes.
        """
        try:
            expected = stdjson.dumps(text, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for it
            with self.assertRaises(UnicodeEncodeError):
                S._jsonDumps(text)
            return
        self.assertEqual(stdjson.loads(S._jsonDumps(text)), text)
        self.assertEqual(S._jsonDumps(text), expected)
        with _without("_orjsonDumps"):
            self.assertEqual(S._jsonDumps(text), expected)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.none() | st.booleans() | st.integers() | st.floats() | st.text()
                    | st.lists(st.integers(), max_size=3) | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
                    max_size=6),
           st.booleans())
    @example([10**30, -(2**64), 2**64 - 1, 1.5, float("nan"), "a\u2028"], True)
    @example([10**30], False)
    @example([float("inf")], True)
    @example([-float("inf"), 1.5], False)
    def test_jsonArguments(self, value: list, compact: bool) -> None:
        """
        An argument list reads back exactly as the standard decoder in the
        documented form (RFC 8259, raw control characters accepted) reads it (same values, same types: a
        100-digit integer stays an integer), or is refused with a
        L{ValueError} when it is not JSON (NaN, Infinity, as Python's
        encoder writes them), with or without orjson, compact or not.
        """
        data = stdjson.dumps(value, separators=(",", ":") if compact else None, ensure_ascii=not compact).encode()
        expected = strictReference(data)
        self.assertEqual(readOrRefuse(data), expected)
        with _without("_orjsonLoads"):
            self.assertEqual(readOrRefuse(data), expected)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.text(), min_size=1, max_size=3), st.sampled_from(["1e400", "-1e999", "NaN", "Infinity",
                                                                          "-Infinity", "1.5", "null"]))
    @example(["a\nb"], "null")
    @example(["\x00", "tab\there"], "1.5")
    def test_jsonStrict(self, texts: list[str], number: str) -> None:
        """
        Text put raw between quotes (control characters unescaped, as a
        lenient writer would) and numbers beyond JSON or a 64-bit float are
        read exactly as by the standard decoder in the documented form,
        with or without orjson: raw control characters inside a string are
        accepted, NaN, Infinity, -Infinity and 1e400 are refused, on every
        fast path.
        """
        for data in (("[" + ",".join(f'"{t}"' for t in texts) + "]").encode("utf-8", "surrogatepass"),
                     f'["{texts[0]}",{number}]'.encode("utf-8", "surrogatepass"), f"[{number}]".encode()):
            expected = strictReference(data)
            self.assertEqual(readOrRefuse(data), expected, data)
            with _without("_orjsonLoads"):
                self.assertEqual(readOrRefuse(data), expected, data)

    def test_jsonRefusals(self) -> None:
        """
        The JSON serializer refuses, with a message naming the rule, NaN and
        Infinity both ways and numbers beyond a 64-bit float in requests; it
        reads raw control characters inside strings and writes them
        escaped.
        """
        json = S.serializer("json")
        for value in (float("nan"), [1, float("inf")], {"x": -float("inf")}):
            with self.assertRaises(ValueError) as ctx:
                json.dumps(value)
            self.assertIn("not JSON (RFC 8259", str(ctx.exception))
        for data, needle in ((b"[NaN]", "NaN is not JSON (RFC 8259"), (b"[-Infinity]", "-Infinity is not JSON"),
                             (b"[1e400]", "beyond the range of a 64-bit float")):
            with self.assertRaises(ValueError) as ctx:
                json.loads(data)
            self.assertIn(needle, str(ctx.exception))
        self.assertEqual(json.loads(b'["a\tb","\x01"]'), ["a\tb", "\x01"])
        self.assertEqual(json.dumps(["a\tb", "\x01"]), b'["a\\tb","\\u0001"]')

    def test_orjsonUsedForText(self) -> None:
        """
        With the orjson extra installed, text results are written by orjson.
        """
        if S._orjsonDumps is None:
            raise SkipTest("the orjson extra is not installed")
        calls = []
        self.patch(S, "_orjsonDumps", lambda value: calls.append(value) or b'"x"')
        self.assertEqual(S._jsonDumps("abc"), b'"x"')
        self.assertEqual(calls, ["abc"])

    def test_orjsonUsedForArguments(self) -> None:
        """
        With the orjson extra installed, an argument list of plain values is
        read by orjson; one holding a float is read again by the standard
        decoder (orjson reads big integers as floats).
        """
        if S._orjsonLoads is None:
            raise SkipTest("the orjson extra is not installed")
        calls = []
        self.patch(S, "_orjsonLoads", lambda data: calls.append(data) or ["from orjson"])
        self.assertEqual(S._jsonLoads(b'["a"]'), ["from orjson"])
        self.patch(S, "_orjsonLoads", lambda data: calls.append(data) or [1e30])
        self.assertEqual(S._jsonLoads(b"[1000000000000000000000000000000]"), [10**30])
        self.assertEqual(calls, [b'["a"]', b"[1000000000000000000000000000000]"])

    @settings(max_examples=100, deadline=None)
    @given(st.recursive(
        st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=20) | st.binary(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    ))
    def test_msgpackRoundTrip(self, value: Any) -> None:
        """
        msgpack carries bytes and text apart, and any nesting of them.
        """
        packer = S.serializer("msgpack")
        self.assertEqual(packer.loads(packer.dumps(value)), value)

    def test_raw(self) -> None:
        """
        The raw serializer passes bytes through and refuses other values.
        """
        raw = S.serializer("raw")
        self.assertEqual(raw.dumps(bytearray(b"ab")), b"ab")
        with self.assertRaises(TypeError) as ctx:
            raw.dumps("text")
        self.assertIn("bytes only", str(ctx.exception))

    def test_compressors(self) -> None:
        """
        gzip and zlib give their standard formats and read them back.
        """
        data = b"txgetty " * 100
        self.assertEqual(gzip.decompress(S.compressor("gzip").compress(data)), data)
        self.assertEqual(zlib.decompress(S.compressor("zlib").compress(data)), data)
        for name in ("none", "gzip", "zlib"):
            c = S.compressor(name)
            self.assertEqual(c.decompress(c.compress(data)), data)

    def test_unknown(self) -> None:
        """
        Unknown codes and names are refused with the available ones listed.
        """
        with self.assertRaises(FrameError) as ctx:
            S.serializer(9)
        self.assertIn("unknown serializer 9", str(ctx.exception))
        self.assertIn("json (1)", str(ctx.exception))
        with self.assertRaises(FrameError) as ctx:
            S.compressor("brotli")
        self.assertIn("unknown compressor 'brotli'", str(ctx.exception))
        self.assertIn("gzip (1)", str(ctx.exception))

    def test_missingExtra(self) -> None:
        """
        A compressor whose extra is not installed names the extra to
        install.
        """
        missing = [(code, name) for code, name in ((3, "zstd"), (4, "lz4")) if code not in S.COMPRESSORS]
        if not missing:
            raise self.skipTest("zstd and lz4 are both installed")
        for code, name in missing:
            for key in (code, name):
                with self.assertRaises(FrameError) as ctx:
                    S.compressor(key)
                self.assertIn(f"txgetty[{name}]", str(ctx.exception))


class BodyTests(SynchronousTestCase):
    """
    The server's request body decoding and response body encoding.
    """

    def test_arguments(self) -> None:
        """
        A body is a list of arguments, or an object of C{args} and
        C{kwargs}; no body is no arguments.
        """
        self.assertEqual(decodeArguments(Frame(F.REQUEST, 1, {}, b"[1,2]")), ([1, 2], {}))
        self.assertEqual(decodeArguments(Frame(F.REQUEST, 1, {}, b'{"args":[1],"kwargs":{"b":2}}')),
                         ([1], {"b": 2}))
        self.assertEqual(decodeArguments(Frame(F.REQUEST, 1, {}, b'{"kwargs":{"b":2}}')), ([], {"b": 2}))
        self.assertEqual(decodeArguments(Frame(F.REQUEST, 1, {}, b"")), ([], {}))

    def test_compressedArguments(self) -> None:
        """
        A compressed body (any serializer) is decompressed first.
        """
        body = zlib.compress(S.serializer("msgpack").dumps([b"\x00", "x"]))
        self.assertEqual(decodeArguments(Frame(F.REQUEST, 1, {}, body, serializer=2, compressor=2)),
                         ([b"\x00", "x"], {}))

    def test_badBodies(self) -> None:
        """
        A body that does not decode, or has the wrong shape, is a
        L{FrameError} saying so.
        """
        for body, needle in (
            (b"[1,", "cannot decode the request body"),
            (b"\xff", "cannot decode the request body"),
            (b"42", "must be a list of arguments"),
            (b'{"args":[1],"other":2}', "must be a list of arguments"),
            (b'{"args":{"a":1}}', "must be a list of arguments"),
            (b'{"kwargs":[1]}', "must be a list of arguments"),
        ):
            with self.assertRaises(FrameError) as ctx:
                decodeArguments(Frame(F.REQUEST, 1, {}, body))
            self.assertIn(needle, str(ctx.exception), body)
        msgpack = S.serializer("msgpack")
        for value, needle in (({"kwargs": {1: 2}}, '"kwargs" keys) must be text'),
                              ({(1, 2): 3}, "cannot decode the request body")):
            body = msgpack.dumps(value)
            with self.assertRaises(FrameError) as ctx:
                decodeArguments(Frame(F.REQUEST, 1, {}, body, serializer=S.MSGPACK))
            self.assertIn(needle, str(ctx.exception), value)

    def test_unknownCodes(self) -> None:
        """
        An unknown serializer or compressor code in a request is a
        L{FrameError} naming it.
        """
        with self.assertRaises(FrameError) as ctx:
            decodeArguments(Frame(F.REQUEST, 1, {}, b"[]", serializer=77))
        self.assertIn("unknown serializer 77", str(ctx.exception))
        with self.assertRaises(FrameError) as ctx:
            decodeArguments(Frame(F.REQUEST, 1, {}, b"[]", compressor=66))
        self.assertIn("unknown compressor 66", str(ctx.exception))

    def test_encodeThreshold(self) -> None:
        """
        A result body is compressed only above the threshold, and the code
        actually used is returned.
        """
        small, used = encodeBody("x" * 10, 1, S.GZIP, 100)
        self.assertEqual((small, used), (b'"' + b"x" * 10 + b'"', S.NONE))
        big, used = encodeBody("x" * 500, 1, S.GZIP, 100)
        self.assertEqual(used, S.GZIP)
        self.assertEqual(gzip.decompress(big), b'"' + b"x" * 500 + b'"')
        plain, used = encodeBody("x" * 500, 1, S.NONE, 100)
        self.assertEqual((len(plain), used), (502, S.NONE))
