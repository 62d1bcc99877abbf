"""
C{--metrics} with C{--workers N}: the supervisor serves the port, and each
scrape of its C{/metrics} asks every ready worker for its own metrics (over
a private UNIX socket per worker), adds a C{worker} label (the slot) to each
sample, and merges them, by name, with the supervisor's own metrics.

Each worker serves its L{MetricsService <txgetty.metrics.MetricsService>} on
C{DIRECTORY/worker-PID.sock}; C{DIRECTORY} is a temporary directory (mode
0700) the supervisor makes at start and removes at stop.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.logger import Logger, LogLevel
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ..workers.slot import HANDOVER, READY, RELOADING, STATES
from .web import MetricsService, metricsSite

_log = Logger()

#: Seconds a worker has to answer a scrape.
SCRAPE_TIMEOUT = 2.0
#: The slot states whose current worker serves: ready, and the two steps
#: of a reload (the old worker serves while the new one starts; then the
#: new one serves while the old one drains).
SERVING = (READY, RELOADING, HANDOVER)
#: The label every worker sample gets (the value: its slot).
WORKER_LABEL = "worker"


def workerSocket(directory: str, pid: int) -> str:
    """
    @param directory: the supervisor's metrics directory.
    @param pid: a worker's process id.
    @return: the UNIX socket path that worker serves its metrics on.
    """
    return os.path.join(directory, f"worker-{pid}.sock")


def makeMetricsDirectory() -> str:
    """
    @return: a new private directory (mode 0700) for the workers' sockets.
    """
    return tempfile.mkdtemp(prefix="txgetty-metrics-")


class _Families:
    """
    Metric families to render (anything with C{collect()} suits
    prometheus_client's encoders).
    """

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def labelled(families: Iterable[Metric], value: str) -> Iterator[Metric]:
    """
    @param families: parsed or collected families.
    @param value: the C{worker} label's value for all their samples.
    @return: copies of the families with that label on every sample.
    """
    for family in families:
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        copy.samples = [Sample(s.name, {**s.labels, WORKER_LABEL: value}, *s[2:]) for s in family.samples]
        yield copy


def merged(families: Iterable[Metric]) -> list[Metric]:
    """
    @param families: families, several with the same name (one per process).
    @return: one family per name, with every sample (first seen first).
    """
    byName: dict[str, Metric] = {}
    for family in families:
        seen = byName.get(family.name)
        if seen is None:
            byName[family.name] = seen = Metric(family.name, family.documentation, family.type, family.unit)
        seen.samples.extend(family.samples)
    return list(byName.values())


class WorkerScraper:
    """
    Fetches the metrics of every serving worker of a supervisor (and is
    its agent's endpoint factory: a worker's URI names its pid).

    @ivar supervisor: the L{WorkerSupervisor <txgetty.workers.WorkerSupervisor>}.
    @ivar directory: where the workers' sockets are.
    @ivar timeout: seconds a worker has to answer.
    @ivar failures: scrapes of a worker that failed (no answer in time, or
        not parseable), by slot.
    @ivar failing: the slots whose worker failed its last scrape, with the
        failures in a row since it last answered: a failing spell is logged
        once, when it begins (warn) and when it ends (info).
    """

    def __init__(self, supervisor: Any, directory: str, reactor: Any, timeout: float = SCRAPE_TIMEOUT) -> None:
        """
        @param supervisor: the supervisor (its C{status()}).
        @param directory: see L{workerSocket}.
        @param reactor: the reactor.
        @param timeout: seconds a worker has to answer.
        """
        self.supervisor = supervisor
        self.directory = directory
        self.reactor = reactor
        self.timeout = timeout
        self.failures: dict[str, int] = {}
        self.failing: dict[str, int] = {}
        self._agent = Agent.usingEndpointFactory(reactor, self)

    def endpointForURI(self, uri: Any) -> UNIXClientEndpoint:
        """
        @param uri: the request's URI: its host is C{worker-PID}.
        @return: the endpoint of that worker's socket.
        """
        pid = int(uri.host.decode("ascii").rpartition("-")[2])
        return UNIXClientEndpoint(self.reactor, workerSocket(self.directory, pid), timeout=self.timeout)

    def fetch(self, pid: int) -> Deferred:
        """
        @param pid: a worker's process id.
        @return: a L{Deferred} firing with the body of its C{/metrics} (text
            format), or failing (no answer, not a 200).
        """
        d = self._agent.request(b"GET", f"http://worker-{pid}/metrics".encode("ascii"), _TEXT_ACCEPT)
        return d.addCallback(_body)

    def scrapeOne(self, slot: str, pid: int) -> Deferred:
        """
        @param slot: the worker's slot.
        @param pid: its process id.
        @return: a L{Deferred} firing with its families labelled C{worker=slot},
            or with C{[]} (counted in L{failures}; the first failure of a
            spell is logged at warn) if it did not answer.
        """
        d = self.fetch(pid)
        d.addTimeout(self.timeout, self.reactor)
        d.addCallback(lambda body: list(labelled(text_string_to_metric_families(body.decode("utf-8")), slot)))

        def answered(families: list[Metric]) -> list[Metric]:
            spell = self.failing.pop(slot, None)
            if spell is not None:
                _log.info("txgetty metrics: worker {worker} (pid {pid}) answers scrapes again, after {count} "
                          "failed scrape(s)", worker=int(slot), pid=pid, count=spell)
            return families

        def failed(failure: Any) -> list[Metric]:
            self.failures[slot] = self.failures.get(slot, 0) + 1
            spell = self.failing[slot] = self.failing.get(slot, 0) + 1
            if spell == 1:
                _log.warn("txgetty metrics: worker {worker} (pid {pid}) did not answer a scrape: {reason}; its "
                          "metrics are missing from /metrics until it answers (counted in "
                          "txgetty_worker_scrape_failures_total; logged once until then)",
                          worker=int(slot), pid=pid, reason=failure.getErrorMessage() or failure.type.__name__,
                          error=failure.type.__name__)
            return []

        return d.addCallbacks(answered, failed)

    def scrape(self) -> Deferred:
        """
        @return: a L{Deferred} firing with the families of every serving
            worker (see L{SERVING}), labelled by slot (not merged).
        """
        ready = [(str(s["slot"]), s["pid"]) for s in self.supervisor.status()
                 if s["state"] in SERVING and s["pid"] is not None]
        if not ready:
            return succeed([])
        d = DeferredList([self.scrapeOne(slot, pid) for slot, pid in ready])
        return d.addCallback(lambda results: [f for _, families in results for f in families])


def _body(response: Any) -> Deferred:
    """
    @param response: a worker's answer.
    @return: its body, if it is a 200.
    @raise ValueError: it is not.
    """
    if response.code != 200:
        raise ValueError(f"HTTP {response.code} from the worker's /metrics")
    return readBody(response)


#: What a scrape of a worker asks for: the text format, which the parser reads.
_TEXT_ACCEPT = Headers({b"accept": [b"text/plain; version=0.0.4"]})


class SupervisorCollector:
    """
    The supervisor's own metrics: workers by state, restarts per slot,
    failed worker scrapes per slot.
    """

    def __init__(self, supervisor: Any, scraper: WorkerScraper) -> None:
        """
        @param supervisor: the supervisor (its C{status()}).
        @param scraper: the scraper (its C{failures}).
        """
        self.supervisor = supervisor
        self.scraper = scraper

    def collect(self) -> Iterator[Metric]:
        """
        @return: C{txgetty_workers}, C{txgetty_worker_restarts_total},
            C{txgetty_worker_scrape_failures_total}.
        """
        status = self.supervisor.status()
        workers = GaugeMetricFamily("txgetty_workers", "Worker slots, by the state of their worker.",
                                    labels=["state"])
        states = {name.lower(): 0 for name in STATES}
        for slot in status:
            state = str(slot["state"]).lower()
            states[state] = states.get(state, 0) + 1
        for state, count in states.items():
            workers.add_metric([state], count)
        restarts = CounterMetricFamily("txgetty_worker_restarts", "Workers restarted, per slot.",
                                       labels=[WORKER_LABEL])
        failures = CounterMetricFamily("txgetty_worker_scrape_failures",
                                       "Scrapes of a worker's metrics that failed (no answer in time, or a bad one), per slot.",
                                       labels=[WORKER_LABEL])
        for slot in status:
            restarts.add_metric([str(slot["slot"])], slot["restarts"])
            failures.add_metric([str(slot["slot"])], self.scraper.failures.get(str(slot["slot"]), 0))
        yield from (workers, restarts, failures)


class WorkersMetricsResource(Resource):
    """
    C{/metrics} of the supervisor: its own registry's metrics merged with
    every ready worker's (rendered asynchronously).
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry, scraper: WorkerScraper) -> None:
        """
        @param registry: the supervisor's own metrics (process metrics get
            C{worker="supervisor"}, to tell them from the workers').
        @param scraper: who asks the workers.
        """
        super().__init__()
        self.registry = registry
        self.scraper = scraper

    def render_GET(self, request: Any) -> Any:
        """
        @param request: the scrape.
        @return: C{NOT_DONE_YET}; the answer follows once the workers answered.
        """
        accept = request.getHeader(b"accept")
        encoder, contentType = choose_encoder(accept.decode("latin-1") if accept else "")
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def render(workers: list[Metric]) -> None:
            own = [f for f in self.registry.collect()]
            local = [f for f in own if f.name.startswith("txgetty_")]
            process = list(labelled([f for f in own if not f.name.startswith("txgetty_")], "supervisor"))
            body = encoder(_Families(merged([*local, *process, *workers])))
            if not gone:
                request.setHeader(b"content-type", contentType.encode("ascii"))
                request.write(body)
                request.finish()

        def failed(failure: Any) -> None:
            _log.failure("txgetty metrics: rendering the workers' metrics failed", failure, LogLevel.error)
            if not gone:
                request.setResponseCode(500)
                request.finish()

        self.scraper.scrape().addCallback(render).addErrback(failed)
        return NOT_DONE_YET


def readyCheck(supervisor: Any) -> Any:
    """
    @param supervisor: the supervisor.
    @return: a readiness check: ready while every slot has a serving worker
        (ready, or reloading: see L{SERVING}).
    """
    def check() -> str | None:
        waiting = [s for s in supervisor.status() if s["state"] not in SERVING]
        if not waiting:
            return None
        first = waiting[0]
        state = str(first["state"]).lower()
        return f"starting: worker {first['slot']} is {state} ({len(waiting)} of {len(supervisor.slots)} not ready)"

    return check


class WorkersMetricsService(MetricsService):
    """
    C{--metrics} of a supervisor: L{WorkersMetricsResource} on C{/metrics},
    C{/readyz} ready once every slot's worker is ready (and the given
    checks pass), draining (503) from the start of the supervisor's stop
    until its workers exited.

    @ivar directory: the workers' socket directory.
    @ivar supervisor: the supervisor.
    @ivar scraper: the L{WorkerScraper}.
    """

    def __init__(self, endpoint: str, supervisor: Any, directory: str, *, reactor: Any = None,
                 timeout: float = SCRAPE_TIMEOUT) -> None:
        """
        @param endpoint: the server endpoint string of C{--metrics}.
        @param supervisor: the L{WorkerSupervisor <txgetty.workers.WorkerSupervisor>}.
        @param directory: see L{makeMetricsDirectory}; removed at stop.
        @param reactor: the reactor; the global one if C{None}.
        @param timeout: seconds a worker has to answer a scrape.
        """
        super().__init__(endpoint, reactor=reactor, checks=[readyCheck(supervisor)])
        self.registry.unregister(self.collector)  # the supervisor has no servers: the workers do
        self.supervisor = supervisor
        self.directory = directory
        self.scraper = WorkerScraper(supervisor, directory, self.reactor, timeout)
        self.registry.register(SupervisorCollector(supervisor, self.scraper))

    def makeSite(self) -> Any:
        """
        @return: the site, with L{WorkersMetricsResource} on C{/metrics}.
        """
        return metricsSite(self.registry, self.readiness, WorkersMetricsResource(self.registry, self.scraper))

    def stopService(self) -> Deferred:
        """
        Say C{draining} until the supervisor's workers exited, then stop
        listening and remove the socket directory.

        @return: a L{Deferred} firing once the port is closed.
        """
        self.readiness.draining = True
        d = self.supervisor.whenStopped()
        d.addBoth(lambda _: MetricsService.stopService(self))
        d.addBoth(self._removeDirectory)
        return d

    def _removeDirectory(self, result: Any) -> Any:
        shutil.rmtree(self.directory, ignore_errors=True)
        return result


__all__ = ["WorkersMetricsService", "WorkersMetricsResource", "WorkerScraper", "SupervisorCollector",
           "workerSocket", "makeMetricsDirectory", "readyCheck", "labelled", "merged"]
