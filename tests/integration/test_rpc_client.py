"""
The RPC client against real RPC servers on 127.0.0.1 port 0.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
import threading

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from txgetty.client.reconnect import ReconnectPolicy
from txgetty.rpc import CallTimeoutError, ConnectionLostError, NoServerError, RemoteError, RpcServer
from txgetty.taskpool import TaskPool

from ..support.net import bounded
from ..support.rpc import Threads, calcOf, calcServer, startClient, startServer


class SilentProtocol(Protocol):
    """
    Reads everything, answers nothing (a hung server).
    """

    def dataReceived(self, data: bytes) -> None:
        """
        @param data: ignored.
        """


class IntegrationTests(TestCase):
    """
    The client against real servers on 127.0.0.1.
    """

    timeout = 60

    async def servers(self, count: int, **kw: Any) -> list[str]:
        """
        @return: the addresses of C{count} started C{Calc} servers.
        """
        self.rpcs = [calcServer(reactor, index=i, **kw) for i in range(count)]
        return [await startServer(self, rpc) for rpc in self.rpcs]

    async def test_endToEnd(self) -> None:
        """
        Proxy calls with keyword arguments, C{async def} and L{Deferred}
        methods, msgpack and gzip above the threshold both ways.
        """

        class Mixed:
            """
            Asynchronous methods.
            """

            async def later(self, x: bytes, *, times: int = 1) -> bytes:
                """
                @return: C{x} repeated, after a reactor turn.
                """
                d: Deferred = Deferred()
                reactor.callLater(0, d.callback, x * times)
                return await d

            def deferred(self, x: int) -> Deferred:
                """
                @return: a L{Deferred} of C{x + 1}.
                """
                d: Deferred = Deferred()
                reactor.callLater(0, d.callback, x + 1)
                return d

        rpc = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor, compressor="gzip", compressThreshold=64)
        rpc.register(Mixed())
        client = startClient(self, await startServer(self, rpc), serializer="msgpack", compressor="zlib",
                             compressThreshold=64)
        mixed = client.proxy("Mixed")
        self.assertEqual(await bounded(mixed.later(b"\x01", kwargs={"times": 200}), "an async call"), b"\x01" * 200)
        self.assertEqual(await bounded(mixed.deferred(41), "a Deferred call"), 42)

    async def test_blockingInPool(self) -> None:
        """
        A method marked blocking runs in a task pool thread, other methods
        in the reactor thread.
        """
        pool = TaskPool(2, reactor=reactor, name="rpc-test")
        pool.startService()
        self.addCleanup(pool.stopService)
        rpc = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor, taskPool=pool)
        rpc.register(Threads())
        client = startClient(self, await startServer(self, rpc))
        value, thread = await bounded(client.call("Threads.blocking", 7), "a blocking call")
        inline = await bounded(client.call("Threads.inline"), "an inline call")
        self.assertEqual(value, 7)
        self.assertNotEqual(thread, threading.get_ident())
        self.assertEqual(inline, threading.get_ident())

    async def test_balanceAndServerDown(self) -> None:
        """
        Round-robin over three servers spreads calls evenly; once one is
        stopped, calls in flight there fail with L{ConnectionLostError} and
        later calls go to the two others.
        """
        addresses = await self.servers(3, shutdownTimeout=0)
        client = startClient(self, addresses, connectTimeout=2)
        for address in addresses:
            await bounded(client._pools[address].whenConnected(), "connections")
        counts = Counter([await bounded(client.call("Calc.where"), "a call") for _ in range(30)])
        self.assertEqual(counts, {0: 10, 1: 10, 2: 10})
        waits = [client.call("Calc.wait") for _ in range(3)]
        while sum(len(calcOf(r).waiting) for r in self.rpcs) < 3:
            await bounded(client.call("Calc.where"), "a call")
        await bounded(self.rpcs[1].stopService(), "a server to stop")
        lost = await bounded(_failedOne(waits), "the lost call")
        self.assertIsInstance(lost, ConnectionLostError)
        counts = Counter([await bounded(client.call("Calc.where"), "a call") for _ in range(20)])
        self.assertEqual(set(counts), {0, 2})
        for rpc in (self.rpcs[0], self.rpcs[2]):
            calcOf(rpc).waiting[0].callback("done")
        answers = await bounded(gatherResults([d for d in waits if not d.called]), "the other calls")
        self.assertEqual(answers, ["done", "done"])

    async def test_noServer(self) -> None:
        """
        When no server can be reached and the client gives up, calls fail
        with L{NoServerError} naming the addresses.
        """
        [address] = await self.servers(1)
        await bounded(self.rpcs[0].stopService(), "the server to stop")
        client = startClient(self, [address], reconnect=ReconnectPolicy(maxAttempts=1))
        error = await bounded(client.call("Calc.add", 1, 2).addErrback(lambda f: f.value), "the failure")
        self.assertIsInstance(error, NoServerError)
        self.assertIn(address, str(error))

    async def test_hungServer(self) -> None:
        """
        A server that reads but never answers (not even heartbeats) gets
        its connection closed within two heartbeat periods; the pending
        call fails with L{ConnectionLostError}.
        """
        port = reactor.listenTCP(0, Factory.forProtocol(SilentProtocol), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = startClient(self, f"127.0.0.1:{port.getHost().port}", heartbeat=0.2, timeout=None)
        error = await bounded(client.call("Calc.add", 1, 2).addErrback(lambda f: f.value), "the failure", 5)
        self.assertIsInstance(error, ConnectionLostError)
        self.assertIn("heartbeat", str(error))

    async def test_auth(self) -> None:
        """
        A client with the right token is served; one with a wrong token
        gets L{RemoteError} AuthError.
        """
        [address] = await self.servers(1, auth=lambda token, session: token == "pw")
        good = startClient(self, address, auth="pw")
        self.assertEqual(await bounded(good.call("Calc.add", 1, 2), "a call"), 3)
        bad = startClient(self, address, auth="nope", reconnect=ReconnectPolicy(maxAttempts=1))
        error = await bounded(bad.call("Calc.add", 1, 2).addErrback(lambda f: f.value), "a refusal")
        self.assertEqual(error.type, "AuthError")

    async def test_shutdownWithCallInFlight(self) -> None:
        """
        Stopping a server with a call in flight answers it and closes the
        connection; a new call is not sent on the going-away connection
        (nor lost): with no other server it waits for a connection and ends
        with its timeout, whose message says that the server is going away.
        """
        [address] = await self.servers(1, shutdownTimeout=10)
        rpc = self.rpcs[0]
        client = startClient(self, address)
        running = client.call("Calc.wait")
        while not calcOf(rpc).waiting:
            await bounded(client.call("Calc.where"), "a call")
        stopped = rpc.stopService()
        refused = await bounded(client.call("Calc.add", 1, 2, timeout=0.5).addErrback(lambda f: f.value),
                                "a refusal")
        self.assertIsInstance(refused, CallTimeoutError)
        self.assertIn("going away", str(refused))
        calcOf(rpc).waiting[0].callback("finished")
        self.assertEqual(await bounded(running, "the call in flight"), "finished")
        await bounded(stopped, "the server to stop")
        self.assertEqual(rpc.server.sessions(), [])


def _failedOne(calls: list[Deferred]) -> Deferred:
    """
    @param calls: call L{Deferred}s.
    @return: a L{Deferred} firing with the exception of the first of them
        to fail.
    """
    first: Deferred = Deferred()

    def failed(failure: Failure) -> None:
        """
        @param failure: a call's failure, passed on to C{first} once.
        """
        if not first.called:
            first.callback(failure.value)

    for d in calls:
        d.addErrback(failed)
    return first
