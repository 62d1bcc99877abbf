"""
Tests for L{txgetty.metrics.collector}: what docs/observability.md says about
when RPC calls are counted.
"""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txgetty.metrics.collector import TxGettyCollector
from txgetty.rpc import RpcClient, RpcServer
from txgetty.rpc import frame as F
from txgetty.rpc.connection import RpcConnection
from txgetty.rpc.frame import RpcCodec
from txgetty.rpc.serializers import JSON
from txgetty.testing import sessionOnStringTransport


def _servedCalls(server: RpcServer) -> dict[tuple[str, str, str], int]:
    """
    @return: the calls the server's stats hold, by key.
    """
    return {key: histogram.count for key, histogram in server.callStats.items()}


class CallCountingTests(SynchronousTestCase):
    """
    docs/observability.md: "RPC calls are timed and counted ... from when a
    collector takes their RPC server or client ...: a process without
    metrics does not time its calls at all".
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=self.clock)
        self.server.register(self, "Calc")
        self.session, self.transport = sessionOnStringTransport(
            RpcConnection(self.server), RpcCodec(), clock=self.clock, role="server")
        self.ids = iter(range(1, 1000))

    def add(self, a: int, b: int) -> int:
        """
        The method called.
        """
        return a + b

    def call(self) -> None:
        """
        Send one C{Calc.add} request (answered at once, the fast path).
        """
        body = json.dumps([1, 2]).encode()
        self.session.dataReceived(F.Frame(F.REQUEST, next(self.ids), {"service": "Calc", "method": "add"},
                                          body, JSON).encode())

    def test_notCountedWithoutCollector(self) -> None:
        """
        Without a collector, calls are answered and counted in the plain
        C{calls} counter, but not timed: the stats stay empty.
        """
        self.call()
        self.assertEqual(self.server.calls, 1)
        self.assertIn(b"3", self.transport.value())
        self.assertEqual(_servedCalls(self.server), {})

    def test_countedFromCollector(self) -> None:
        """
        Once a collector takes the server, each call is counted with its
        outcome; earlier calls are not.
        """
        self.call()
        TxGettyCollector(rpcServers=[self.server])
        self.call()
        self.call()
        self.assertEqual(_servedCalls(self.server), {("Calc", "add", "ok"): 2})

    def test_readLatency(self) -> None:
        """
        docs/observability.md: "A call answered at once is counted when the
        read that brought it is done, with the time from that read to then".
        Two calls read at t=5 whose methods take a second each are both
        counted at 2 s (the answers leave together at t=7).
        """
        TxGettyCollector(rpcServers=[self.server])
        self.server.register(self, "Slow")
        self.clock.advance(5)
        head = {"service": "Slow", "method": "tick"}
        self.session.dataReceived(F.Frame(F.REQUEST, 1, head, b"[]", JSON).encode()
                                  + F.Frame(F.REQUEST, 2, head, b"[]", JSON).encode())
        (key, histogram), = self.server.callStats.items()
        self.assertEqual(key, ("Slow", "tick", "ok"))
        self.assertEqual((histogram.count, histogram.sum), (2, 4.0))
        buckets = dict(histogram.cumulative())
        self.assertEqual((buckets["1.0"], buckets["2.5"]), (0, 2))

    def tick(self) -> None:
        """
        A method that takes a second of the clock.
        """
        self.clock.advance(1)

    def test_refusalsCountedFromCollector(self) -> None:
        """
        Refused calls (no such method) are counted only once watched, too.
        """
        bad = F.Frame(F.REQUEST, 500, {"service": "Calc", "method": "nope"}, b"[]", JSON).encode()
        self.session.dataReceived(bad)
        self.assertEqual(_servedCalls(self.server), {})
        TxGettyCollector(rpcServers=[self.server])
        self.session.dataReceived(F.Frame(F.REQUEST, 501, {"service": "Calc", "method": "nope"}, b"[]",
                                          JSON).encode())
        self.assertEqual(_servedCalls(self.server), {("_other", "_other", "NoSuchMethod"): 1})

    def test_clientWatched(self) -> None:
        """
        A collector given an RPC client watches its call stats too.
        """
        client = RpcClient(["tcp:127.0.0.1:1"], reactor=self.clock)
        self.assertFalse(client.callStats.watched)
        TxGettyCollector(rpcClients=[client])
        self.assertTrue(client.callStats.watched)
