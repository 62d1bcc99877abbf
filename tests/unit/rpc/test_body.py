"""
Unit tests of the RPC body encoding shared by client and server
(L{txgetty.rpc.body}).
"""

from __future__ import annotations

import gzip
import zlib

from twisted.trial.unittest import SynchronousTestCase

from txgetty.rpc import Frame, FrameError, frame as F, serializers as S
from txgetty.rpc.body import decodeArguments, encodeBody


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
