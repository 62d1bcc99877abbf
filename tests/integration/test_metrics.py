"""
C{/metrics}, C{/healthz} and C{/readyz} of a real running server, scraped
over HTTP on 127.0.0.1, parsed with prometheus_client's text parser and
checked with promtool; and docs/observability.md's metric table.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from txgetty import Server
from txgetty.handlers import EchoListener
from txgetty.codec import codecFromString
from txgetty.metrics import METRICS, MetricsService
from txgetty.rpc import RemoteError
from txgetty.taskpool import TaskPool

from ..support.docs import DOCS
from ..support.metrics import get, requirePromtool
from ..support.net import bounded, connectClient, echoCheck, samplePayloads
from ..support.rpc import calcServer, startClient, startServer


def _echo(session: Any) -> None:
    session.codec = codecFromString("hello")
    session.listener = EchoListener()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """
    @param text: an exposition.
    @return: each sample's value by name and sorted labels.
    """
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(found: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    """
    @return: the sum of the samples named C{name} whose labels include C{labels}.
    """
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


class ScrapeTests(TestCase):
    """
    A server, an RPC server and a task pool watched by a L{MetricsService},
    scraped while traffic flows.
    """

    timeout = 60

    async def start(self) -> tuple[MetricsService, Server, Any]:
        pool = TaskPool(2, reactor=reactor)
        self.server = Server(["tcp:0:interface=127.0.0.1"], _echo, reactor=reactor, taskPool=pool)
        self.rpc = calcServer(reactor)
        metrics = MetricsService("tcp:0:interface=127.0.0.1", reactor=reactor, servers=[self.server],
                                 rpcServers=[self.rpc], taskPools=[pool])
        metrics.startService()
        self.addCleanup(lambda: metrics.stopService() if metrics.running else None)
        await bounded(_until(lambda: metrics.port is not None), "the metrics port")
        self.metrics = metrics
        return metrics, self.server, pool

    async def test_readinessFlipsOnStartAndDrain(self) -> None:
        """
        C{/readyz} answers 503 with C{starting} before the servers listen,
        200 once every one does, 503 C{draining} once one stops; C{/healthz}
        answers 200 throughout.
        """
        metrics, server, pool = await self.start()
        code, body = await get(metrics.port, "/readyz")
        self.assertEqual((code, body.startswith("not ready: starting:")), (503, True), body)
        self.assertEqual(await get(metrics.port, "/healthz"), (200, "ok\n"))
        pool.startService()
        self.addCleanup(pool.stopService)
        server.startService()
        self.addCleanup(lambda: server.stopService() if server.running else None)
        await startServer(self, self.rpc)
        await bounded(server.whenListening(), "the server to listen")
        self.assertEqual(await get(metrics.port, "/readyz"), (200, "ready\n"))
        await bounded(self.rpc.stopService(), "the RPC server to stop")
        code, body = await get(metrics.port, "/readyz")
        self.assertEqual(code, 503)
        self.assertIn("draining", body)
        self.assertEqual(body.count("\n"), 1)
        self.assertEqual((await get(metrics.port, "/healthz"))[0], 200)

    async def test_countersMoveAndPromtoolAccepts(self) -> None:
        """
        After packets flow and calls succeed and fail, the scrape shows an
        open session, the packets and bytes both ways, the calls by
        outcome, the task pool's queue waits; promtool accepts it.
        """
        metrics, server, pool = await self.start()
        pool.startService()
        self.addCleanup(pool.stopService)
        server.startService()
        self.addCleanup(lambda: server.stopService() if server.running else None)
        [address] = await bounded(server.whenListening(), "the server to listen")
        rpcAddress = await startServer(self, self.rpc)
        before = samples((await get(metrics.port, "/metrics"))[1])
        self.assertEqual(total(before, "txgetty_sessions_open", transport="tcp"), 0)
        client = await connectClient(self, address)
        await echoCheck(self, client, samplePayloads(20))
        rpc = startClient(self, rpcAddress)
        self.assertEqual(await bounded(rpc.call("Calc.add", 1, 2), "a call"), 3)
        with self.assertRaises(RemoteError):
            await bounded(rpc.call("Calc.add", 1, "x"), "a failing call")
        with self.assertRaises(RemoteError):
            await bounded(rpc.call("Calc.nothing"), "a call of no method")
        code, text = await get(metrics.port, "/metrics")
        self.assertEqual(code, 200)
        found = samples(text)
        self.flushLoggedErrors(TypeError)
        listener = {"server": "txgetty", "listener": "tcp:0:interface=127.0.0.1", "transport": "tcp"}
        self.assertEqual(total(found, "txgetty_sessions_open", **listener), 1)
        self.assertEqual(total(found, "txgetty_sessions_open", server="txgetty rpc"), 1)
        self.assertGreaterEqual(total(found, "txgetty_received_packets_total", **listener), 20)
        self.assertGreaterEqual(total(found, "txgetty_sent_packets_total", **listener), 20)
        self.assertGreater(total(found, "txgetty_received_bytes_total", **listener), 20 * 4)
        self.assertEqual(total(found, "txgetty_rpc_server_calls_total", service="Calc", method="add",
                               outcome="ok"), 1)
        self.assertEqual(total(found, "txgetty_rpc_server_calls_total", service="Calc", method="add",
                               outcome="TypeError"), 1)
        self.assertEqual(total(found, "txgetty_rpc_server_calls_total", service="_other", method="_other",
                               outcome="NoSuchMethod"), 1)
        self.assertEqual(total(found, "txgetty_rpc_server_call_duration_seconds_count", service="Calc",
                               method="add"), 2)
        self.assertEqual(total(found, "txgetty_rpc_client_calls_total"), 0)  # no client was watched
        self.assertGreaterEqual(total(found, "txgetty_taskpool_queue_wait_seconds_count"), 1)
        await client.disconnect()
        await bounded(_until(lambda: len(server.sessions()) == 0), "the session to go")
        after = samples((await get(metrics.port, "/metrics"))[1])
        self.assertEqual(total(after, "txgetty_sessions_closed_total", reason="peer_reset", **listener)
                         + total(after, "txgetty_sessions_closed_total", reason="peer_closed", **listener), 1)
        self.assertGreaterEqual(total(after, "txgetty_received_packets_total", **listener), 20)
        promtool = requirePromtool()
        check = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)


class DocTableTests(TestCase):
    """
    docs/observability.md lists exactly the metrics a scrape exposes.
    """

    def test_tableIsTheMetrics(self) -> None:
        """
        The table under "Metrics" has one row per metric of
        L{txgetty.metrics.METRICS}: name (C{_total} for counters), type,
        labels and meaning, in order.
        """
        text = (DOCS / "observability.md").read_text()
        section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
        rows = re.findall(r"^\| `(txgetty_\w+)` \| (\w+) \| ([^|]*) \| ([^|]*) \|$", section, re.M)
        expected = [(name + ("_total" if kind == "counter" else ""), kind,
                     ", ".join(f"`{label}`" for label in labels) or "—", help)
                    for name, kind, labels, help in METRICS]
        self.assertEqual([(n, k, ls.strip(), h.strip()) for n, k, ls, h in rows], expected)

    def test_scrapeHasEveryTableName(self) -> None:
        """
        Every metric of the table is in a scrape (of idle objects), and no
        txgetty metric is in a scrape that the table lacks.
        """
        from prometheus_client import CollectorRegistry, generate_latest

        from txgetty.metrics import TxGettyCollector
        from txgetty import Client

        server = Server(["tcp:0:interface=127.0.0.1"], _echo, reactor=reactor)
        client = Client("tcp:127.0.0.1:1", _echo, reactor=reactor)
        registry = CollectorRegistry()
        registry.register(TxGettyCollector([server], {"c": client}, [calcServer(reactor)], [], [TaskPool(1)]))
        exposed = {family.name for family in text_string_to_metric_families(generate_latest(registry).decode())}
        self.assertEqual(exposed, {name for name, _, _, _ in METRICS})


def _until(condition: Any) -> Any:
    """
    @return: a L{Deferred} firing once C{condition()} is true (polled).
    """
    from twisted.internet.defer import Deferred
    from twisted.internet.task import LoopingCall

    d: Deferred = Deferred()

    def poll() -> None:
        if condition():
            loop.stop()
            d.callback(None)

    loop = LoopingCall(poll)
    loop.clock = reactor
    loop.start(0.02)
    return d
