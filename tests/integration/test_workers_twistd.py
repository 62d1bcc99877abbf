"""
C{twistd -n txgetty --workers N} (and C{twist}) with real processes on 127.0.0.1 port 0
(docs/workers.md, I{twistd txgetty --workers}): the spread of connections,
a worker killed while a client calls, a reload with zero failed calls, and
the drain on SIGTERM.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.task import deferLater

from txgetty.rpc import ConnectionLostError, RpcClient

from ..support.workers import TapWorkers, processExists
from .test_workers import WorkersTestCase


class TapWorkersTestCase(WorkersTestCase):
    """
    Starts C{twistd txgetty --workers N} and kills its process group at the
    end.
    """

    async def tap(self, workers: int, *extra: str) -> TapWorkers:
        """
        @return: twistd with every worker ready.
        """
        process = TapWorkers(workers, *extra)
        self.addCleanup(process.killGroup)
        return await process.startAll()


class TapSpreadTests(TapWorkersTestCase):
    """
    The connections of C{--listen} and C{--rpc-listen} spread over the
    workers.
    """

    async def test_spread(self) -> None:
        """
        50 connections open at once to the C{--app} listener of 2 workers:
        each worker holds its fair share within +-30 % (25 +- 7); every
        connection is served by a worker, not by the supervisor.
        """
        tap = await self.tap(2)
        counts = collections.Counter(await self.pids(tap.ports["listen"], 50))
        self.assertEqual(set(counts), set(tap.pids))
        for pid, count in counts.items():
            self.assertLessEqual(abs(count - 25), 25 * 0.3, counts)
        self.assertNotIn(tap.pid, counts)

    async def test_rpcOnEveryWorker(self) -> None:
        """
        The C{--service} code is loaded in each worker: an RPC client with 4
        connections reaches both workers.
        """
        tap = await self.tap(2)
        client = self.rpcClient(tap.ports["rpc-listen"], connections=4, timeout=10)
        await client.whenAllConnected()
        pids = {await client.call("Work.pid") for _ in range(16)}
        self.assertEqual(pids, set(tap.pids))


class TwistTests(TapWorkersTestCase):
    """
    C{twist txgetty --workers N} (docs/workers.md: "Works with twist as well
    as twistd").
    """

    async def test_twist(self) -> None:
        """
        Under C{twist}, 2 workers become ready, both serve RPC calls, and
        SIGTERM ends the supervisor and every worker.
        """
        process = TapWorkers(2, runner="twist")
        self.addCleanup(process.killGroup)
        tap = await process.startAll()
        client = self.rpcClient(tap.ports["rpc-listen"], connections=4, timeout=10)
        await client.whenAllConnected()
        pids = {await client.call("Work.pid") for _ in range(16)}
        self.assertEqual(pids, set(tap.pids))
        await client.stopService()
        tap.signal("TERM")
        await tap.waitForEnd()
        for pid in tap.pids:
            self.assertFalse(processExists(pid))


class TapKillTests(TapWorkersTestCase):
    """
    SIGKILL of one worker of C{twistd txgetty --workers 2}.
    """

    async def test_sigkillWhileCalling(self) -> None:
        """
        A client with 4 connections keeps calling (8 loops) while one worker
        is killed: the calls in flight on the killed worker fail with
        ConnectionLostError at once (none hangs: each ends well within its
        10 s timeout), every other call succeeds, the loops go on
        without a pause of their own (the next call is made from the failed
        call's errback), and the slot comes back with a new worker.
        """
        tap = await self.tap(2)
        client = self.rpcClient(tap.ports["rpc-listen"], connections=4, timeout=10)
        await client.whenAllConnected()
        victim = tap.pids[0]
        running = [True]
        outcomes: list[tuple[float, Any]] = []

        async def loop() -> None:
            while running[0]:
                started = time.monotonic()
                try:
                    outcomes.append((time.monotonic() - started, await client.call("Work.slow", 0.02)))
                except Exception as e:
                    outcomes.append((time.monotonic() - started, e))

        loops = [ensureDeferred(loop()) for _ in range(8)]
        await deferLater(reactor, 0.5, lambda: None)
        mark = len(tap.lines)
        os.kill(victim, signal.SIGKILL)
        await tap.waitFor(r"txgetty workers: worker 0 \(pid (\d+)\) is ready", after=mark)
        await deferLater(reactor, 1.0, lambda: None)
        running[0] = False
        await gatherResults(loops)
        failures = [o for _, o in outcomes if isinstance(o, Exception)]
        for failure in failures:
            self.assertIsInstance(failure, ConnectionLostError)
        self.assertLessEqual(len(failures), 8, failures)
        self.assertLess(max(t for t, _ in outcomes), 5.0)
        after = [o for _, o in outcomes[-20:]]
        self.assertTrue(all(isinstance(o, int) for o in after), after)
        self.assertFalse(processExists(victim))


class TapStopTests(TapWorkersTestCase):
    """
    SIGTERM to C{twistd txgetty --workers 2}.
    """

    async def test_sigtermDrains(self) -> None:
        """
        SIGTERM while slow calls are in flight on both workers: every call
        finishes with its result, then the workers and twistd exit, and no
        worker is left.
        """
        tap = await self.tap(2)
        client = self.rpcClient(tap.ports["rpc-listen"], connections=4, timeout=20)
        await client.whenAllConnected()
        slow = [client.call("Work.slow", 1.0) for _ in range(8)]
        await deferLater(reactor, 0.3, lambda: None)
        tap.signal("TERM")
        results = await gatherResults(slow)
        self.assertEqual(set(results), set(tap.pids))
        await tap.waitForEnd()
        self.assertEqual(tap.signalled, signal.SIGTERM)
        self.assertIn("every worker exited", "\n".join(tap.lines))
        for pid in tap.pids:
            self.assertFalse(processExists(pid))


class TapReloadTests(TapWorkersTestCase):
    """
    SIGHUP to C{twistd txgetty --workers 2}.
    """

    async def test_reloadZeroFailedCalls(self) -> None:
        """
        SIGHUP while 8 loops call (plain calls: neither idempotent nor
        re-sent by the caller) over a client's 4 persistent connections:
        every worker is replaced one at a time and not one call fails (the
        old workers send the going-away notice, the client moves its new
        calls to other connections and reconnects), and the calls end on
        the new workers.
        """
        tap = await self.tap(2)
        client = self.rpcClient(tap.ports["rpc-listen"], connections=4, timeout=20)
        await client.whenAllConnected()
        running = [True]
        outcomes: list[Any] = []

        async def loop() -> None:
            while running[0]:
                try:
                    outcomes.append(await client.call("Work.slow", 0.01))
                except Exception as e:
                    outcomes.append(e)

        loops = [ensureDeferred(loop()) for _ in range(8)]
        await deferLater(reactor, 0.3, lambda: None)
        mark = len(tap.lines)
        tap.signal("HUP")
        await tap.waitFor(r"reload done: 2 of 2 slots run new workers", after=mark)
        await deferLater(reactor, 1.0, lambda: None)
        running[0] = False
        await gatherResults(loops)
        failures = [o for o in outcomes if isinstance(o, Exception)]
        self.assertEqual(failures, [])
        self.assertGreater(len(outcomes), 100)
        last = set(outcomes[-16:])
        self.assertEqual(last & set(tap.pids), set(), "the calls did not move to the new workers")
