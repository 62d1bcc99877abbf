"""
A real Prometheus server scraping a running txgetty's C{/metrics} with the
scrape config of docs/observability.md, with its example alert rules loaded
(Debian's C{prometheus}, which C{.ci/run} installs): the target is up, the
samples are stored, and the rules are accepted and evaluated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from txgetty import Server
from txgetty.codec import codecFromString
from txgetty.handlers import EchoListener
from txgetty.metrics import MetricsService

from ..support.components import requireComponent
from ..support.docs import DOCS
from ..support.metrics import get
from ..support.net import bounded, connectClient, echoCheck, samplePayloads
from ..support.rpc import calcServer, startClient, startServer


def _echo(session: Any) -> None:
    session.codec = codecFromString("hello")
    session.listener = EchoListener()


def _yamlBlock(section: str) -> str:
    """
    @param section: a heading of docs/observability.md.
    @return: the first YAML block under it.
    """
    text = (DOCS / "observability.md").read_text()
    body = text.split(f"## {section}\n", 1)[1]
    return re.search(r"```yaml\n(.*?)```", body, re.S).group(1)  # type: ignore[union-attr]


def _freePort() -> int:
    """
    @return: a loopback port the kernel picked (the Prometheus server is
        told to listen on it; it cannot report a port 0 of its own).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Output(ProcessProtocol):
    """
    Keeps what the Prometheus server writes, and fires when it exits.
    """

    def __init__(self) -> None:
        self.output = bytearray()
        self.ended: Deferred[None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)


class PrometheusServerTests(TestCase):
    """
    docs/observability.md, "Scraping with Prometheus" and "An example alert",
    run by a real Prometheus server.
    """

    timeout = 120

    async def startTxgetty(self) -> int:
        """
        Start an echo server, an RPC server and their metrics on 127.0.0.1,
        and make some traffic.

        @return: the metrics port.
        """
        server = Server(["tcp:0:interface=127.0.0.1"], _echo, reactor=reactor)
        rpc = calcServer(reactor)
        metrics = MetricsService("tcp:0:interface=127.0.0.1", reactor=reactor, servers=[server], rpcServers=[rpc])
        metrics.startService()
        self.addCleanup(lambda: metrics.stopService() if metrics.running else None)
        server.startService()
        self.addCleanup(lambda: server.stopService() if server.running else None)
        [address] = await bounded(server.whenListening(), "the server to listen")
        client = await connectClient(self, address)
        await echoCheck(self, client, samplePayloads(10))
        rpcClient = startClient(self, await startServer(self, rpc))
        for i in range(5):
            self.assertEqual(await bounded(rpcClient.call("Calc.add", i, 1), "a call"), i + 1)
        while metrics.port is None:
            await deferLater(reactor, 0.05, lambda: None)
        code, _ = await get(metrics.port, "/metrics")
        self.assertEqual(code, 200)
        return int(metrics.port.getHost().port)

    def startPrometheus(self, metricsPort: int) -> int:
        """
        Start the Prometheus server with the doc's scrape config (its target
        the test's metrics port, scraped every second) and the doc's alert
        rules.

        @return: its HTTP port.
        """
        binary = requireComponent(os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus"),
                                  "the Prometheus server test",
                                  "the Prometheus server is not installed (apt-get install prometheus)")
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        config = _yamlBlock("Scraping with Prometheus")
        self.assertIn('targets: ["127.0.0.1:9464"]', config)
        config = config.replace("127.0.0.1:9464", f"127.0.0.1:{metricsPort}").replace("15s", "1s")
        rules = os.path.join(work, "rules.yml")
        with open(rules, "w") as f:
            f.write(_yamlBlock("An example alert"))
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write(f"global:\n  evaluation_interval: 1s\nrule_files: [{json.dumps(rules)}]\n{config}")
        port = _freePort()
        self.output = _Output()
        process = reactor.spawnProcess(  # type: ignore[attr-defined]
            self.output, binary,
            [binary, f"--config.file={work}/prometheus.yml", f"--storage.tsdb.path={work}/data",
             f"--web.listen-address=127.0.0.1:{port}"], env=dict(os.environ))

        async def stop() -> None:
            if not self.output.ended.called:
                process.signalProcess("TERM")
                await bounded(self.output.ended, "the Prometheus server to stop", 30)

        self.addCleanup(stop)
        return port

    async def api(self, port: int, path: str) -> Any:
        """
        @return: the C{data} of a Prometheus HTTP API answer, or C{None}
            while it does not answer.
        """
        try:
            code, body = await get(_Port(port), path)
        except Exception:
            return None
        if code != 200:
            return None
        answer = json.loads(body)
        return answer["data"] if answer.get("status") == "success" else None

    async def waitFor(self, port: int, path: str, check: Any, what: str) -> Any:
        """
        Ask the API until C{check(data)} is true, for 60 seconds at most.
        """
        for _ in range(240):
            data = await self.api(port, path)
            if data is not None and check(data):
                return data
            if self.output.ended.called:
                break
            await deferLater(reactor, 0.25, lambda: None)
        self.fail(f"{what}: not seen; Prometheus said:\n{self.output.output.decode(errors='replace')[-3000:]}")

    async def test_scrapedByPrometheus(self) -> None:
        """
        With the doc's scrape config, the target is up with no scrape error,
        the session and RPC counters are stored with their labels, and the
        doc's alert rules load and are evaluated (their health is "ok").
        """
        metricsPort = await self.startTxgetty()
        port = self.startPrometheus(metricsPort)
        targets = await self.waitFor(
            port, "/api/v1/targets",
            lambda d: any(t["health"] == "up" for t in d["activeTargets"]), "the txgetty target up")
        [target] = targets["activeTargets"]
        self.assertEqual((target["labels"]["job"], target["lastError"]), ("txgetty", ""))
        calls = await self.waitFor(
            port, "/api/v1/query?query=txgetty_rpc_server_calls_total",
            lambda d: d["result"], "txgetty_rpc_server_calls_total stored")
        byMethod = {(r["metric"]["service"], r["metric"]["method"], r["metric"]["outcome"]): float(r["value"][1])
                    for r in calls["result"]}
        self.assertEqual(byMethod[("Calc", "add", "ok")], 5.0)
        opened = await self.waitFor(
            port, "/api/v1/query?query=txgetty_sessions_opened_total",
            lambda d: d["result"], "txgetty_sessions_opened_total stored")
        self.assertIn("txgetty", {r["metric"]["server"] for r in opened["result"]})
        rules = await self.waitFor(
            port, "/api/v1/rules",
            lambda d: d["groups"] and all(r.get("lastEvaluation", "").startswith("2") and
                                          not r["lastEvaluation"].startswith("0001")
                                          for g in d["groups"] for r in g["rules"]),
            "the example alert rules evaluated")
        names = {r["name"]: r["health"] for g in rules["groups"] for r in g["rules"]}
        self.assertEqual(names, {"TxgettyRpcErrors": "ok", "TxgettyNotReady": "ok"})


class _Port:
    """
    What L{get} needs of a port: its host address.
    """

    def __init__(self, port: int) -> None:
        self.port = port

    def getHost(self) -> Any:
        return self
