"""
Integration tests for L{txgetty.taskpool.TaskPool}: real worker threads,
the real reactor, servers on 127.0.0.1 port 0.
"""

from __future__ import annotations

from typing import Any
import random
import threading
import time

from twisted.internet import reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.errors import ConfigError
from txgetty.handlers import EventListener
from txgetty.server import Server
from txgetty.taskpool import TaskPool

from ..support.net import bounded, connectClient


TCP = "tcp:0:interface=127.0.0.1"

#: The longest a gated test handler waits for its gate (it is opened sooner).
WAIT_GATE = 10.0


class Handler(EventListener):
    """
    Echoes; runs a hook per packet first (in the worker thread).
    """

    def __init__(self, hook: Any = None) -> None:
        self.hook = hook
        self.threads: set[str] = set()

    def onMessage(self, session: Any, pkg: Any) -> None:
        self.threads.add(threading.current_thread().name)
        if self.hook is not None:
            self.hook(session, pkg)
        session.writePkg(pkg)


class PoolTests(TestCase):
    """
    Handlers in worker threads.
    """

    async def serve(self, handler: Handler, pool: TaskPool, **config: Any) -> Any:
        """
        Start a pool and an echo server using it; stop both at cleanup.

        @return: the server's address.
        """
        pool.startService()
        self.addCleanup(lambda: bounded(pool.stopService(), "the pool to stop"))

        def newSession(session: Any) -> None:
            session.codec = HelloCodec()
            session.listener = handler

        server = Server([TCP], newSession, reactor=reactor, taskPool=pool, config=SessionConfig(**config))
        server.startService()
        self.addCleanup(lambda: bounded(server.stopService(), "the server to stop"))
        [address] = await bounded(server.whenListening(), "the server to listen")
        return address

    async def test_blockingHandlerDoesNotStallOthers(self) -> None:
        """
        A handler that blocks 1 s for one session's packet does not delay
        another session's echoes: they come back long before the second
        is over, and the reactor thread never ran a handler.
        """
        release = threading.Event()

        def hook(session: Any, pkg: bytes) -> None:
            if pkg == b"slow":
                release.wait(1.0)

        handler = Handler(hook)
        address = await self.serve(handler, TaskPool(size=2, reactor=reactor))
        slow = await connectClient(self, address)
        fast = await connectClient(self, address)
        slow.sendPackets([b"slow"])
        await deferLater(reactor, 0.05, lambda: None)
        started = time.monotonic()
        fast.sendPackets([b"f%d" % i for i in range(50)])
        await bounded(fast.whenReceived(50), "the fast echoes")
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 0.5)
        self.assertEqual(slow.received, [])
        release.set()
        self.assertEqual(await bounded(slow.whenReceived(1), "the slow echo"), [b"slow"])
        self.assertNotIn("MainThread", handler.threads)

    async def test_halfCloseAnswersEverything(self) -> None:
        """
        A client that sends its packets and half-closes (as C{nc -N} or
        C{socat} do when their input ends) gets every answer of the slow
        pooled handler, in order, and then a clean close from the server.
        """
        handler = Handler(lambda session, pkg: time.sleep(0.05))
        address = await self.serve(handler, TaskPool(size=2, reactor=reactor))
        client = await connectClient(self, address)
        payloads = [b"q%d" % i for i in range(5)]
        client.sendPackets(payloads)
        client.transport.loseWriteConnection()
        await bounded(client.whenLost(), "the server to close after answering")
        self.assertEqual(client.received, payloads)
        self.assertTrue(client.lostReason.check(ConnectionDone), client.lostReason)

    async def test_slowReplyNotHeldByQueue(self) -> None:
        """
        In the ordered pool, the reply of a slow handler (over the batch's
        10 ms) is sent as soon as it returns, while the session's next
        packets are still queued or blocked: it does not wait for the end
        of their batch.
        """
        gates = [threading.Event() for _ in range(4)]

        def hook(session: Any, pkg: bytes) -> None:
            gates[int(pkg[1:])].wait(WAIT_GATE)

        address = await self.serve(Handler(hook), TaskPool(size=1, reactor=reactor))
        client = await connectClient(self, address)
        client.sendPackets([b"p0", b"p1", b"p2", b"p3"])
        await deferLater(reactor, 0.05, gates[0].set)
        self.assertEqual(await bounded(client.whenReceived(1), "the first reply", 5), [b"p0"])
        self.assertFalse(gates[1].is_set())
        for gate in gates[1:]:
            gate.set()
        self.assertEqual(await bounded(client.whenReceived(4), "the other replies"), [b"p0", b"p1", b"p2", b"p3"])

    async def test_orderPerSession(self) -> None:
        """
        With many sessions, handlers that take random short times, and 4
        workers, each session's packets are handled and answered in order.
        """
        seen: dict[int, list[bytes]] = {}
        lock = threading.Lock()

        def hook(session: Any, pkg: bytes) -> None:
            time.sleep(random.random() / 5000)
            with lock:
                seen.setdefault(session.id, []).append(pkg)

        address = await self.serve(Handler(hook), TaskPool(size=4, reactor=reactor))
        clients = [await connectClient(self, address) for _ in range(12)]
        payloads = [b"%d" % i for i in range(150)]
        for client in clients:
            client.sendPackets(payloads)
        for client in clients:
            self.assertEqual(await bounded(client.whenReceived(150), "echoes"), payloads)
        self.assertEqual(sorted(len(v) for v in seen.values()), [150] * 12)
        for packets in seen.values():
            self.assertEqual(packets, payloads)

    async def test_unorderedRunsConcurrently(self) -> None:
        """
        In unordered mode two packets of the same session are in the
        handler at the same time (a 2-party barrier only passes then).
        """
        barrier = threading.Barrier(2, timeout=5)
        passed = []

        def hook(session: Any, pkg: bytes) -> None:
            barrier.wait()
            passed.append(pkg)

        address = await self.serve(Handler(hook), TaskPool(size=2, ordered=False, reactor=reactor))
        client = await connectClient(self, address)
        client.sendPackets([b"a", b"b"])
        received = await bounded(client.whenReceived(2), "both echoes")
        self.assertEqual(sorted(received), [b"a", b"b"])
        self.assertEqual(sorted(passed), [b"a", b"b"])

    async def test_errorsKeepWorkersAlive(self) -> None:
        """
        Handler exceptions reach onError (with the session) and close only
        that session (default policy); the single worker thread survives and
        serves the next session.
        """
        errors: list[Any] = []

        class Failing(Handler):
            def onError(self, session: Any, failure: Any) -> None:
                errors.append((session, failure))

        def hook(session: Any, pkg: bytes) -> None:
            if pkg == b"boom":
                raise KeyError("boom")

        address = await self.serve(Failing(hook), TaskPool(size=1, reactor=reactor))
        bad = await connectClient(self, address)
        bad.sendPackets([b"boom", b"after"])
        await bounded(bad.whenLost(), "the failing session to close")
        self.assertEqual(len(errors), 1)
        self.assertTrue(errors[0][1].check(KeyError))
        self.assertEqual(bad.received, [])
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)
        good = await connectClient(self, address)
        good.sendPackets([b"ok"])
        self.assertEqual(await bounded(good.whenReceived(1), "an echo"), [b"ok"])

    async def test_backpressureOnSlowHandler(self) -> None:
        """
        A session whose handler is slow stops being read once backlogHighMark
        packets wait: the server holds at most about that many of them.
        """
        gate = threading.Event()
        peak = []

        def hook(session: Any, pkg: bytes) -> None:
            peak.append(session.taskBacklog)
            gate.wait(5)

        address = await self.serve(Handler(hook), TaskPool(size=1, reactor=reactor),
                                   backlogHighMark=8, backlogLowMark=2)
        client = await connectClient(self, address)
        client.sendPackets([b"x" * 1000] * 2000)
        await deferLater(reactor, 0.3, lambda: None)
        gate.set()
        await bounded(client.whenReceived(2000), "every echo", 20)
        self.assertLessEqual(max(peak), 8 + 70)

    async def test_stopWithWorkPending(self) -> None:
        """
        Stopping the pool while handlers are busy and packets queued: queued
        work may finish within stopTimeout, the rest is dropped and counted,
        and the stop Deferred fires even though one handler never returns in
        time.
        """
        gate = threading.Event()
        pool = TaskPool(size=1, stopTimeout=0.2, reactor=reactor)

        def hook(session: Any, pkg: bytes) -> None:
            gate.wait(3)

        handler = Handler(hook)
        pool.startService()

        def newSession(session: Any) -> None:
            session.codec = HelloCodec()
            session.listener = handler

        server = Server([TCP], newSession, reactor=reactor, taskPool=pool)
        server.startService()
        self.addCleanup(lambda: bounded(server.stopService(), "the server to stop"))
        [address] = await bounded(server.whenListening(), "listening")
        clients = [await connectClient(self, address) for _ in range(3)]
        for client in clients:
            client.sendPackets([b"p"] * 5)
        await deferLater(reactor, 0.2, lambda: None)
        started = time.monotonic()
        await bounded(pool.stopService(), "the pool to stop")
        self.assertLess(time.monotonic() - started, 2.0)
        gate.set()
        # The released worker drops the queued tasks, reporting each to the
        # reactor thread; wait (bounded) for those reports.
        for _ in range(100):
            if pool.abandoned:
                break
            await deferLater(reactor, 0.02, lambda: None)
        self.assertEqual(pool.abandoned, 10)

    def test_badParameters(self) -> None:
        """
        Bad pool sizes and limits are refused with a L{ConfigError}.
        """
        for kw in ({"size": 0}, {"maxQueued": 0}, {"stopTimeout": -1}):
            self.assertRaises(ConfigError, TaskPool, reactor=reactor, **kw)


class AwaitInPoolTests(TestCase):
    """
    Awaitables returned by handlers running in the pool.
    """

    async def test_asyncHandlerOrdered(self) -> None:
        """
        An C{async def} onMessage under the ordered pool runs (its awaits in
        the reactor thread) and is awaited before the session's next packet:
        the packets are handled and answered in order.
        """
        log: list[tuple[str, bytes]] = []

        class Async(EventListener):
            async def onMessage(self, session: Any, pkg: bytes) -> None:
                log.append(("start", pkg))
                await deferLater(reactor, 0.01 if pkg == b"1" else 0, lambda: None)
                log.append(("end", pkg))
                session.writePkg(pkg)

        pool = TaskPool(size=2, reactor=reactor)
        pool.startService()
        self.addCleanup(lambda: bounded(pool.stopService(), "the pool to stop"))

        def newSession(session: Any) -> None:
            session.codec = HelloCodec()
            session.listener = Async()

        server = Server([TCP], newSession, reactor=reactor, taskPool=pool)
        server.startService()
        self.addCleanup(lambda: bounded(server.stopService(), "the server to stop"))
        [address] = await bounded(server.whenListening(), "listening")
        client = await connectClient(self, address)
        client.sendPackets([b"1", b"2", b"3"])
        self.assertEqual(await bounded(client.whenReceived(3), "echoes"), [b"1", b"2", b"3"])
        self.assertEqual(log, [("start", b"1"), ("end", b"1"), ("start", b"2"), ("end", b"2"),
                               ("start", b"3"), ("end", b"3")])


class OutboundCapTests(TestCase):
    """
    A peer that never reads, on real sockets.
    """

    async def test_pushToNonReader(self) -> None:
        """
        A server pushing to a client that never reads is closed with
        L{OutboundOverflowError} once maxPendingBytes wait (after onError),
        instead of buffering without bound.
        """
        from txgetty.errors import OutboundOverflowError

        from ..support.net import EchoRecorder

        listener = EchoRecorder(echo=False)

        class Pusher(EchoRecorder):
            def onOpen(self, session: Any) -> None:
                listener.onOpen(session)
                reactor.callLater(0, self.push, session)

            def push(self, session: Any) -> None:
                for _ in range(64):
                    if session.isClosed:
                        return
                    session.writePkg(b"p" * 65536)

            def onError(self, session: Any, failure: Any) -> None:
                listener.onError(session, failure)

            def onClose(self, session: Any) -> None:
                listener.onClose(session)

        def newSession(session: Any) -> None:
            session.codec = HelloCodec()
            session.listener = Pusher()

        config = SessionConfig(maxPendingBytes=1024 * 1024, writeHighMark=65536, writeLowMark=0)
        server = Server([TCP], newSession, reactor=reactor, config=config)
        server.startService()
        self.addCleanup(lambda: bounded(server.stopService(), "the server to stop"))
        [address] = await bounded(server.whenListening(), "listening")
        client = await connectClient(self, address)
        client.transport.pauseProducing()
        await bounded(listener.whenEvent("close"), "the pushing session to close")
        self.assertTrue(listener.errors[0].check(OutboundOverflowError))
        self.assertIn("maxPendingBytes", listener.errors[0].getErrorMessage())
