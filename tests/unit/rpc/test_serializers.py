"""
Unit tests of the RPC serializers and compressors (L{txgetty.rpc.serializers}).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
import gzip
import json as stdjson
import zlib

from hypothesis import example, given, settings, strategies as st
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from txgetty.rpc import FrameError, serializers as S


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
