"""
Unit tests for L{txgetty.rpc.calls}: the deadline of a call (C{timeout-ms})
and the compressor its client accepts.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from txgetty.rpc import frame as F
from txgetty.rpc.calls import acceptedCompressor, deadlineOf, describeCall, parseDeadline
from txgetty.rpc.serializers import JSON, NONE, ZLIB


class DeadlineTests(SynchronousTestCase):
    """
    L{parseDeadline} reads C{timeout-ms} by its grammar and remembers what it
    parsed.
    """

    def test_grammar(self) -> None:
        """
        1 to 10 digits, optionally a '.' and 1 to 3 more, are milliseconds;
        '0' is no deadline; anything else is C{None}.
        """
        self.assertEqual(parseDeadline("1500"), 1.5)
        self.assertEqual(parseDeadline("0.5"), 0.0005)
        self.assertEqual(parseDeadline("0"), 0.0)
        for bad in ("", "-1", "1e3", "12345678901", "1.2345", " 1"):
            self.assertIsNone(parseDeadline(bad), bad)

    def test_remembered(self) -> None:
        """
        A value parsed once is found by L{deadlineOf}.
        """
        parseDeadline("2500")
        self.assertEqual(deadlineOf("2500"), 2.5)


class HeadTests(SynchronousTestCase):
    """
    What L{txgetty.rpc.calls} reads of a request's head.
    """

    def test_acceptedCompressor(self) -> None:
        """
        C{accept-compressor} names a known code, else none (0).
        """
        def frame(value: str | None) -> F.Frame:
            head = {F.SERVICE: "S", F.METHOD: "m"}
            if value is not None:
                head[F.ACCEPT_COMPRESSOR] = value
            return F.Frame(F.REQUEST, 1, head, b"", JSON)

        self.assertEqual(acceptedCompressor(frame(str(ZLIB))), ZLIB)
        for ignored in (None, "", "x", "9999", "250"):
            self.assertEqual(acceptedCompressor(frame(ignored)), NONE, ignored)

    def test_describeCall(self) -> None:
        """
        A request is described with its id, a oneway without.
        """
        head = {F.SERVICE: "Calc", F.METHOD: "add"}
        self.assertEqual(describeCall(F.Frame(F.REQUEST, 4, head, b"", JSON)), "Calc.add request #4")
        self.assertEqual(describeCall(F.Frame(F.ONEWAY, 0, head, b"", JSON)), "Calc.add oneway")
