"""
Tests for L{txgetty.discovery._stream}: a stream of JSON objects cut into
chunks anywhere yields the same objects, in order, and a broken stream is
reported, not guessed at.
"""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txgetty.discovery._stream import JSONObjectStream, JSONStreamError


# Text with the characters that matter to the scanner: braces, quotes,
# backslashes, brackets, and multi-byte UTF-8.
_tricky = st.text(alphabet=st.sampled_from('{}[]"\\\\/ab é€😀\n\t'), max_size=12)
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _tricky
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_tricky, inner, max_size=4),
    max_leaves=12,
)
_objects = st.dictionaries(_tricky, _values, max_size=5)


def feedAll(parser: JSONObjectStream, chunks: list[bytes]) -> list[object]:
    """
    @param parser: a parser.
    @param chunks: the stream's chunks.
    @return: every object the chunks completed.
    """
    out: list[object] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """
    @param data: bytes.
    @param points: where to cut them (any order, any values).
    @return: the pieces.
    """
    marks = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in zip(marks, marks[1:])]


class ChunkingTests(SynchronousTestCase):
    """
    However the bytes arrive, the objects come out whole and in order.
    """

    def test_etcdWatchStream(self) -> None:
        """
        A watch body as etcd sends it (objects separated by newlines) split
        at every single byte gives each message once, in order.
        """
        messages = [
            {"result": {"header": {"revision": "2"}, "created": True}},
            {"result": {"events": [{"kv": {"key": "Zm9v", "value": "e30="}}]}},
            {"result": {"events": [{"type": "DELETE", "kv": {"key": "Zm9v"}}]}},
        ]
        data = b"".join(json.dumps(m).encode() + b"\n" for m in messages)
        for size in range(1, 8):
            parser = JSONObjectStream()
            chunks = [data[i:i + size] for i in range(0, len(data), size)]
            self.assertEqual(feedAll(parser, chunks), messages, f"chunks of {size}")
            self.assertEqual(parser.pending, 0)

    def test_objectsBackToBack(self) -> None:
        """
        Objects need no separator, and one chunk may complete several.
        """
        parser = JSONObjectStream()
        self.assertEqual(parser.feed(b'{"a":1}{"b":{"c":2}} \r\n\t{"d":[{}]}'), [{"a": 1}, {"b": {"c": 2}}, {"d": [{}]}])

    def test_bracesAndQuotesInStrings(self) -> None:
        """
        Braces, quotes and backslashes inside strings do not end an object,
        even when a chunk ends right after a backslash.
        """
        obj = {"k}": 'v{"}\\', "x\\": '\\"{'}
        data = json.dumps(obj).encode()
        for i in range(len(data) + 1):
            parser = JSONObjectStream()
            self.assertEqual(feedAll(parser, [data[:i], data[i:]]), [obj], f"cut at {i}")

    def test_multibyteCharacterSplit(self) -> None:
        """
        A UTF-8 character cut between two chunks is decoded whole.
        """
        data = json.dumps({"v": "€😀"}, ensure_ascii=False).encode("utf-8")
        parser = JSONObjectStream()
        out = feedAll(parser, [bytes([b]) for b in data])
        self.assertEqual(out, [{"v": "€😀"}])

    def test_incompleteObjectWaits(self) -> None:
        """
        Half an object yields nothing and is kept for the next chunk.
        """
        parser = JSONObjectStream()
        self.assertEqual(parser.feed(b'{"a": [1, {"b": "}'), [])
        self.assertEqual(parser.pending, len(b'{"a": [1, {"b": "}'))
        self.assertEqual(parser.feed(b'"}]}'), [{"a": [1, {"b": "}"}]}])

    @settings(max_examples=200, deadline=None)
    @given(st.lists(_objects, max_size=5), st.lists(st.integers(min_value=0), max_size=12),
           st.sampled_from([b"", b"\n", b" \r\n "]), st.booleans())
    def test_anyChunking(self, objects: list[dict], points: list[int], separator: bytes, ascii: bool) -> None:
        """
        Any objects, any separator, any cut points: the same objects come
        out, and nothing is left pending.
        """
        data = b"".join(json.dumps(o, ensure_ascii=ascii).encode("utf-8") + separator for o in objects)
        parser = JSONObjectStream()
        self.assertEqual(feedAll(parser, cut(data, points)), objects)
        self.assertEqual(parser.pending, 0)


class BrokenStreamTests(SynchronousTestCase):
    """
    Bytes that cannot be a stream of objects are an error, and the parser
    stays broken afterwards.
    """

    def test_notAnObject(self) -> None:
        """
        A top-level value that is not an object (text, an array, a number)
        is refused, with the bytes in the message.
        """
        for data in (b"Not Found", b"[1]", b"42", b'{"a":1}x'):
            parser = JSONObjectStream()
            error = self.assertRaises(JSONStreamError, feedAll, parser, [data])
            self.assertIn("expected a JSON object", str(error))

    def test_invalidInsideObject(self) -> None:
        """
        Balanced braces around invalid JSON are refused with the decoder's
        reason.
        """
        error = self.assertRaises(JSONStreamError, JSONObjectStream().feed, b'{"a": }')
        self.assertIn("not valid JSON", str(error))

    def test_brokenStaysBroken(self) -> None:
        """
        After an error every later feed raises the same error.
        """
        parser = JSONObjectStream()
        first = self.assertRaises(JSONStreamError, parser.feed, b"oops")
        second = self.assertRaises(JSONStreamError, parser.feed, b'{"a":1}')
        self.assertIs(first, second)

    def test_objectTooLarge(self) -> None:
        """
        An object growing past C{maxObjectBytes} is refused before it ends,
        so memory stays bounded.
        """
        parser = JSONObjectStream(maxObjectBytes=100)
        parser.feed(b'{"a": "' + b"x" * 90)
        error = self.assertRaises(JSONStreamError, parser.feed, b"x" * 20)
        self.assertIn("exceeds 100 bytes", str(error))
