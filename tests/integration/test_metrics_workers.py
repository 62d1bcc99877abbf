"""
C{twistd -n txgetty --workers 2 --metrics ...} as real processes on
127.0.0.1 port 0 (docs/observability.md, I{With --workers N}): one scrape
of the supervisor shows every worker's series with a C{worker} label,
merged by name with the supervisor's own; C{/readyz} says ready once every
worker is; a worker that does not answer is left out and counted.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.defer import gatherResults
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody

from txgetty.metrics.workers import WorkerScraper

from ..support.metrics import requirePromtool
from ..support.net import bounded
from .test_metrics import samples, total
from .test_workers_twistd import TapWorkersTestCase


async def fetch(port: int, path: str) -> tuple[int, str]:
    """
    @return: the status and body of C{GET http://127.0.0.1:PORT/PATH}.
    """
    url = f"http://127.0.0.1:{port}{path}".encode("ascii")
    response = await bounded(Agent(reactor).request(b"GET", url), f"GET {path}")
    return response.code, (await bounded(readBody(response), f"the body of {path}")).decode("utf-8")


class WorkersScrapeTests(TapWorkersTestCase):
    """
    The supervisor's C{--metrics} port.
    """

    async def test_oneScrapeShowsEveryWorker(self) -> None:
        """
        After 20 connections spread over 2 workers, one scrape of the
        supervisor has C{txgetty_sessions_opened_total} with C{worker="0"}
        and C{worker="1"}, both moved and summing to 20, each family once
        (prometheus_client's parser and promtool accept it), the
        supervisor's C{txgetty_workers{state="ready"}} 2 and its own
        process metrics under C{worker="supervisor"}; C{/readyz} is 200
        and C{/healthz} 200.
        """
        tap = await self.tap(2, "--metrics", "tcp:0:interface=127.0.0.1")
        log = "\n".join(tap.lines)
        port = int(re.findall(r"/readyz on tcp:0:interface=127\.0\.0\.1 \(bound to tcp:127\.0\.0\.1:(\d+)\)", log)[0])
        self.assertEqual(await fetch(port, "/readyz"), (200, "ready\n"))
        self.assertEqual(await fetch(port, "/healthz"), (200, "ok\n"))
        code, before = await fetch(port, "/metrics")
        self.assertEqual(code, 200)
        self.assertEqual(total(samples(before), "txgetty_sessions_opened_total", server="txgetty"), 0)
        await self.pids(tap.ports["listen"], 20)
        code, text = await fetch(port, "/metrics")
        found = samples(text)
        names = [family.name for family in text_string_to_metric_families(text)]
        self.assertEqual(len(names), len(set(names)), "each family once")
        perWorker = [total(found, "txgetty_sessions_opened_total", server="txgetty", worker=w) for w in "01"]
        self.assertTrue(all(n > 0 for n in perWorker), perWorker)
        self.assertEqual(sum(perWorker), 20)
        self.assertEqual(total(found, "txgetty_workers", state="ready"), 2)
        self.assertEqual(total(found, "txgetty_worker_scrape_failures_total"), 0)
        self.assertGreater(total(found, "process_resident_memory_bytes", worker="supervisor"), 0)
        for w in "01":
            self.assertGreater(total(found, "process_resident_memory_bytes", worker=w), 0)
        promtool = requirePromtool()
        check = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)


    async def test_readyzDrainsOnSigterm(self) -> None:
        """
        While 8 slow calls are in flight, one scrape shows them in the
        workers' C{txgetty_rpc_server_calls_in_flight} (8 in all); after
        SIGTERM, while the workers finish those calls, C{/readyz} answers
        C{503 not ready: draining: the process is stopping} and
        C{/healthz} still 200; every call succeeds, twistd exits and the
        socket directory is gone.
        """
        tap = await self.tap(2, "--metrics", "tcp:0:interface=127.0.0.1")
        log = "\n".join(tap.lines)
        port = int(re.findall(r"/readyz on tcp:0:interface=127\.0\.0\.1 \(bound to tcp:127\.0\.0\.1:(\d+)\)", log)[0])
        directory = re.findall(r"on unix:(\S+)/worker-\d+\.sock", log)[0]
        client = self.rpcClient(tap.ports["rpc-listen"], connections=4, timeout=20)
        await client.whenAllConnected()
        slow = [client.call("Work.slow", 2.0) for _ in range(8)]
        await deferLater(reactor, 0.5, lambda: None)
        found = samples((await fetch(port, "/metrics"))[1])
        self.assertEqual(total(found, "txgetty_rpc_server_calls_in_flight"), 8)
        tap.signal("TERM")
        await deferLater(reactor, 0.3, lambda: None)
        self.assertEqual(await fetch(port, "/readyz"), (503, "not ready: draining: the process is stopping\n"))
        self.assertEqual(await fetch(port, "/healthz"), (200, "ok\n"))
        results = await gatherResults(slow)
        self.assertEqual(len(results), 8)
        await tap.waitForEnd()
        self.assertFalse(os.path.exists(directory))


class _OneReadySlot:
    """
    A supervisor whose slot 0 is ready with a pid that serves nothing.
    """

    slots = [0]

    def status(self) -> list[dict]:
        return [{"slot": 0, "state": "READY", "pid": 2 ** 22 + os.getpid(), "restarts": 0, "handed": 0}]


class SilentWorkerTests(TestCase):
    """
    A worker that does not answer.
    """

    async def test_leftOutAndCounted(self) -> None:
        """
        A ready worker with no socket is left out of the scrape (no
        families) and counted in the scraper's failures for its slot.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        scraper = WorkerScraper(_OneReadySlot(), directory, reactor)
        self.assertEqual(await bounded(scraper.scrape(), "a scrape"), [])
        self.assertEqual(scraper.failures, {"0": 1})

    async def test_silentWorkerTimesOut(self) -> None:
        """
        A worker that accepts the scrape and never answers is given up
        after the timeout (2 seconds by default), left out and counted.
        """
        from twisted.internet.endpoints import UNIXServerEndpoint
        from twisted.internet.protocol import Factory, Protocol

        from txgetty.metrics.workers import SCRAPE_TIMEOUT, workerSocket

        self.assertEqual(SCRAPE_TIMEOUT, 2.0)
        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        supervisor = _OneReadySlot()
        pid = supervisor.status()[0]["pid"]
        port = await UNIXServerEndpoint(reactor, workerSocket(directory, pid)).listen(Factory.forProtocol(Protocol))
        self.addCleanup(port.stopListening)
        scraper = WorkerScraper(supervisor, directory, reactor, timeout=0.5)
        started = reactor.seconds()
        self.assertEqual(await bounded(scraper.scrape(), "a scrape"), [])
        self.assertGreaterEqual(reactor.seconds() - started, 0.4)
        self.assertEqual(scraper.failures, {"0": 1})

    async def test_badAnswerCounted(self) -> None:
        """
        A worker socket answering C{/metrics} with a 404 is left out and
        counted as a failure.
        """
        from twisted.internet.endpoints import UNIXServerEndpoint
        from twisted.web.resource import Resource
        from twisted.web.server import Site

        from txgetty.metrics.workers import workerSocket

        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        supervisor = _OneReadySlot()
        path = workerSocket(directory, supervisor.status()[0]["pid"])
        port = await UNIXServerEndpoint(reactor, path).listen(Site(Resource()))
        self.addCleanup(port.stopListening)
        scraper = WorkerScraper(supervisor, directory, reactor)
        self.assertEqual(await bounded(scraper.scrape(), "a scrape"), [])
        self.assertEqual(scraper.failures, {"0": 1})
