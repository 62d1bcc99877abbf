"""
L{txgetty.metrics.workers}: labelling and merging families, the
supervisor's own metrics, its readiness, the asynchronous C{/metrics}
render and the drain.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest


from txgetty.metrics.workers import (
    SupervisorCollector, WorkerScraper, WorkersMetricsResource, WorkersMetricsService, labelled, merged, readyCheck,
)

from ...support.logs import captureEvents

WORKER_TEXT = """\
# HELP txgetty_sessions_opened_total Sessions opened.
# TYPE txgetty_sessions_opened_total counter
txgetty_sessions_opened_total{server="txgetty"} 3.0
# HELP txgetty_rpc_server_call_duration_seconds Latency.
# TYPE txgetty_rpc_server_call_duration_seconds histogram
txgetty_rpc_server_call_duration_seconds_bucket{le="0.1"} 1.0
txgetty_rpc_server_call_duration_seconds_bucket{le="+Inf"} 2.0
txgetty_rpc_server_call_duration_seconds_count 2.0
txgetty_rpc_server_call_duration_seconds_sum 0.5
"""


class FakeSupervisor:
    """
    A supervisor's C{status()}, C{slots} and C{whenStopped()}.
    """

    def __init__(self, states: list[str]) -> None:
        self.states = states
        self.slots = list(range(len(states)))
        self.stopped: Deferred = Deferred()

    def status(self) -> list[dict[str, Any]]:
        return [{"slot": i, "state": state, "pid": 100 + i, "restarts": i, "handed": 0}
                for i, state in enumerate(self.states)]

    def whenStopped(self) -> Deferred:
        return self.stopped


class FixedScraper:
    """
    A scraper answering with each slot's L{WORKER_TEXT}.
    """

    failures: dict[str, int] = {"1": 4}

    def scrape(self) -> Deferred:
        families = []
        for slot in "01":
            families.extend(labelled(text_string_to_metric_families(WORKER_TEXT), slot))
        return succeed(families)


class FamilyTests(SynchronousTestCase):
    """
    L{labelled} and L{merged}.
    """

    def test_labelEverySample(self) -> None:
        """
        Every sample (histogram buckets, count and sum too) gets
        C{worker=SLOT}, its other labels kept.
        """
        families = list(labelled(text_string_to_metric_families(WORKER_TEXT), "3"))
        samples = [s for f in families for s in f.samples]
        self.assertEqual(len(samples), 5)
        self.assertTrue(all(s.labels["worker"] == "3" for s in samples))
        self.assertEqual(samples[0].labels, {"server": "txgetty", "worker": "3"})

    def test_mergeByName(self) -> None:
        """
        Families of the same name from two workers become one, with both
        workers' samples, in order.
        """
        families = [*labelled(text_string_to_metric_families(WORKER_TEXT), "0"),
                    *labelled(text_string_to_metric_families(WORKER_TEXT), "1")]
        together = merged(families)
        self.assertEqual([f.name for f in together],
                         ["txgetty_sessions_opened", "txgetty_rpc_server_call_duration_seconds"])
        self.assertEqual([s.labels["worker"] for s in together[0].samples], ["0", "1"])
        self.assertEqual(len(together[1].samples), 8)


class SupervisorMetricsTests(SynchronousTestCase):
    """
    L{SupervisorCollector} and L{readyCheck}.
    """

    def test_collector(self) -> None:
        """
        C{txgetty_workers} counts slots by state (every state, lower case),
        C{txgetty_worker_restarts_total} and
        C{txgetty_worker_scrape_failures_total} are per slot.
        """
        families = {f.name: f for f in SupervisorCollector(FakeSupervisor(["READY", "BACKOFF"]),
                                                            FixedScraper()).collect()}  # type: ignore[arg-type]
        workers = {s.labels["state"]: s.value for s in families["txgetty_workers"].samples}
        self.assertEqual(workers["ready"], 1)
        self.assertEqual(workers["backoff"], 1)
        self.assertEqual(workers["stopping"], 0)
        restarts = {s.labels["worker"]: s.value for s in families["txgetty_worker_restarts"].samples}
        self.assertEqual(restarts, {"0": 0, "1": 1})
        failures = {s.labels["worker"]: s.value for s in families["txgetty_worker_scrape_failures"].samples}
        self.assertEqual(failures, {"0": 0, "1": 4})

    def test_readyCheck(self) -> None:
        """
        Ready while every slot has a serving worker (ready, or reloading:
        the old or the new worker serves); else the first waiting slot and
        how many wait.
        """
        supervisor = FakeSupervisor(["READY", "STARTING"])
        check = readyCheck(supervisor)
        self.assertEqual(check(), "starting: worker 1 is starting (1 of 2 not ready)")
        supervisor.states = ["READY", "READY"]
        self.assertIsNone(check())
        supervisor.states = ["RELOADING", "HANDOVER"]
        self.assertIsNone(check())
        supervisor.states = ["BACKOFF", "READY"]
        self.assertEqual(check(), "starting: worker 0 is backoff (1 of 2 not ready)")


class ResourceTests(SynchronousTestCase):
    """
    L{WorkersMetricsResource}.
    """

    def render(self, accept: bytes | None = None) -> DummyRequest:
        service = WorkersMetricsService("tcp:0", FakeSupervisor(["READY", "READY"]), "/nonexistent",
                                        reactor=MemoryReactorClock())
        resource = WorkersMetricsResource(service.registry, FixedScraper())  # type: ignore[arg-type]
        request = DummyRequest([b""])
        if accept is not None:
            request.requestHeaders.setRawHeaders(b"accept", [accept])
        self.assertIs(resource.render_GET(request), NOT_DONE_YET)
        self.assertEqual(request.finished, 1)
        return request

    def test_textMerged(self) -> None:
        """
        The scrape is the workers' families, merged (each family once),
        with the supervisor's C{txgetty_workers*} families unlabelled, its
        process metrics labelled C{worker="supervisor"}, and none of the
        (empty) server families of its own.
        """
        request = self.render()
        text = b"".join(request.written).decode()
        families = list(text_string_to_metric_families(text))
        names = [f.name for f in families]
        self.assertEqual(len(names), len(set(names)))
        byName = {f.name: f for f in families}
        self.assertEqual({s.labels["worker"] for s in byName["txgetty_sessions_opened"].samples}, {"0", "1"})
        self.assertEqual(byName["txgetty_workers"].samples[0].labels.keys(), {"state"})
        self.assertEqual({s.labels["worker"] for s in byName["process_max_fds"].samples}, {"supervisor"})
        self.assertNotIn("txgetty_sessions_open", names)
        self.assertTrue(request.responseHeaders.getRawHeaders(b"content-type")[0].startswith(b"text/plain"))

    def test_openMetrics(self) -> None:
        """
        A scraper asking for OpenMetrics gets it (ending with C{# EOF}).
        """
        request = self.render(b"application/openmetrics-text; version=1.0.0")
        text = b"".join(request.written).decode()
        self.assertTrue(text.endswith("# EOF\n"))
        self.assertIn('txgetty_sessions_opened_total{server="txgetty",worker="1"} 3.0', text)


class DrainTests(SynchronousTestCase):
    """
    L{WorkersMetricsService} while the supervisor stops.
    """

    def test_drainingUntilWorkersExited(self) -> None:
        """
        From its stop, C{/readyz} says draining; the port stays open until
        the supervisor's workers exited, then it closes and the socket
        directory is removed.
        """
        directory = tempfile.mkdtemp()
        reactor = MemoryReactorClock()
        supervisor = FakeSupervisor(["READY", "READY"])
        service = WorkersMetricsService("tcp:0", supervisor, directory, reactor=reactor)
        service.startService()
        self.assertEqual(service.readiness.answer(), (200, "ready"))
        self.assertIsNotNone(service.port)
        done = service.stopService()
        self.assertEqual(service.readiness.answer(), (503, "not ready: draining: the process is stopping"))
        self.assertIsNotNone(service.port)
        self.assertNoResult(done)
        self.assertTrue(os.path.isdir(directory))
        supervisor.stopped.callback(None)
        self.successResultOf(done)
        self.assertIsNone(service.port)
        self.assertFalse(os.path.exists(directory))


class ScraperTests(SynchronousTestCase):
    """
    L{WorkerScraper} choosing whom to ask.
    """

    def test_onlyServingWorkers(self) -> None:
        """
        With no serving worker (starting), a scrape asks nobody and has no
        families.
        """
        scraper = WorkerScraper(FakeSupervisor(["STARTING"]), "/nonexistent", MemoryReactorClock())
        self.assertEqual(self.successResultOf(scraper.scrape()), [])
        self.assertEqual(scraper.failures, {})


class FlakyScraper(WorkerScraper):
    """
    A scraper whose workers answer with L{WORKER_TEXT}, or fail while their
    pid is in C{down}.
    """

    def __init__(self, supervisor: FakeSupervisor) -> None:
        super().__init__(supervisor, "/nonexistent", MemoryReactorClock())
        self.down: set[int] = set()

    def fetch(self, pid: int) -> Deferred:
        if pid in self.down:
            return fail(ConnectionRefusedError("nothing listens on the worker's metrics socket"))
        return succeed(WORKER_TEXT.encode("utf-8"))


class ScrapeLogTests(SynchronousTestCase):
    """
    A worker whose metrics socket fails to answer is logged once per failing
    spell (warn, with C{worker} and C{reason}), not on every scrape; its
    first answer after the spell is one info line.
    """

    def setUp(self) -> None:
        self.events = captureEvents(self)
        self.scraper = FlakyScraper(FakeSupervisor(["READY", "READY"]))

    def scrapes(self, n: int) -> list[list[Any]]:
        """
        @param n: how many scrapes.
        @return: the families of each.
        """
        return [self.successResultOf(self.scraper.scrape()) for _ in range(n)]

    def metricsEvents(self, level: Any) -> list[dict]:
        return [e for e in self.events
                if e.get("log_namespace") == "txgetty.metrics.workers" and e["log_level"] == level]

    def test_oncePerSpell(self) -> None:
        """
        Five failed scrapes of worker 1 make one warning (worker 1, its pid,
        the reason) and five counted failures; worker 0 is still scraped;
        the next answer makes one info line with the count, and a new spell
        makes a new warning.
        """
        self.scraper.down.add(101)
        results = self.scrapes(5)
        [warning] = self.metricsEvents(LogLevel.warn)
        self.assertEqual((warning["worker"], warning["pid"]), (1, 101))
        self.assertIn("nothing listens on the worker's metrics socket", warning["reason"])
        self.assertEqual(warning["error"], "ConnectionRefusedError")
        self.assertEqual(self.scraper.failures, {"1": 5})
        self.assertEqual({s.labels["worker"] for f in results[-1] for s in f.samples}, {"0"})
        self.assertEqual(self.metricsEvents(LogLevel.info), [])
        self.scraper.down.clear()
        self.scrapes(3)
        [back] = self.metricsEvents(LogLevel.info)
        self.assertEqual((back["worker"], back["pid"], back["count"]), (1, 101, 5))
        self.assertEqual(len(self.metricsEvents(LogLevel.warn)), 1)
        self.scraper.down.add(101)
        self.scrapes(2)
        self.assertEqual(len(self.metricsEvents(LogLevel.warn)), 2)
        self.assertEqual(self.scraper.failures, {"1": 7})

    def test_badAnswerIsAFailure(self) -> None:
        """
        An answer that is not the text format counts as a failed scrape and
        starts a spell like no answer does.
        """
        self.scraper.fetch = lambda pid: succeed(b"not { metrics")  # type: ignore[method-assign]
        self.scrapes(2)
        self.assertEqual(len(self.metricsEvents(LogLevel.warn)), 2)
        self.assertEqual(self.scraper.failures, {"0": 2, "1": 2})


class DocTableTests(SynchronousTestCase):
    """
    docs/observability.md's table of the supervisor's own metrics.
    """

    def test_tableIsTheCollector(self) -> None:
        """
        The table under "Metrics with C{--workers N}" lists exactly what
        L{SupervisorCollector} exposes: name (C{_total} for counters),
        type, labels and meaning, in order; the states listed are the
        exposed C{state} values.
        """
        from ...support.docs import DOCS

        text = (DOCS / "observability.md").read_text()
        section = text.split("## Metrics with `--workers N`", 1)[1].split("\n## ", 1)[0]
        rows = re.findall(r"^\| `(txgetty_\w+)` \| (\w+) \| `(\w+)` \| ([^|]*) \|$", section, re.M)
        families = list(SupervisorCollector(FakeSupervisor(["READY"]), FixedScraper()).collect())  # type: ignore[arg-type]
        expected = [(f.name + ("_total" if f.type == "counter" else ""), f.type,
                     next(iter(k for k in f.samples[0].labels)), f.documentation) for f in families]
        self.assertEqual([(n, k, label, h.strip()) for n, k, label, h in rows], expected)
        states = re.search(r"`state` is one of ([^(]*)\(", section).group(1)  # type: ignore[union-attr]
        self.assertEqual(re.findall(r"`(\w+)`", states), [s.labels["state"] for s in families[0].samples])
