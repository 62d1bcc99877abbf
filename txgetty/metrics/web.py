"""
C{/metrics}, C{/healthz} and C{/readyz} over twisted.web, and the service
that listens for them.

  - C{/metrics}: the registry's metrics in Prometheus's text format (or
    OpenMetrics, when the scraper asks for it).
  - C{/healthz}: 200 C{ok} while the reactor runs (it answers the request).
  - C{/readyz}: 200 C{ready} once every readiness check passes (every
    server listens; others, such as a registry's registration, may be
    added); 503 with a one-line reason while starting or draining.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Site

from .collector import TxGettyCollector

_log = Logger()

#: A readiness check: C{None} when ready, else why not (one line).
ReadinessCheck = Callable[[], "str | None"]


class MetricsResource(Resource):
    """
    The metrics of a registry, rendered in the reactor thread (the
    collectors read txgetty's objects without locks).
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        """
        @param registry: what to expose.
        """
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Any) -> bytes:
        """
        @param request: the scrape.
        @return: the exposition.
        """
        accept = request.getHeader(b"accept")
        encoder, contentType = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"content-type", contentType.encode("ascii"))
        return encoder(self.registry)


class _Text(Resource):
    """
    A one-line text answer with a status chosen per request.
    """

    isLeaf = True

    def __init__(self, answer: Callable[[], tuple[int, str]]) -> None:
        """
        @param answer: gives the status code and the line.
        """
        super().__init__()
        self.answer = answer

    def render_GET(self, request: Any) -> bytes:
        """
        @param request: the probe.
        @return: the line.
        """
        code, line = self.answer()
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return (line + "\n").encode("utf-8")


def serverCheck(server: Any) -> ReadinessCheck:
    """
    @param server: a L{Server <txgetty.Server>} or an RPC server (anything
        with C{isListening}, C{running} and C{name}, or a C{server} that
        has them).
    @return: a check: ready while it listens; C{starting} until it first
        does, C{draining} once it stopped.
    """
    inner = getattr(server, "server", server)
    seen = [False]

    def check() -> str | None:
        if inner.isListening and getattr(server, "running", True):
            seen[0] = True
            return None
        state = "draining" if seen[0] else "starting"
        return f"{state}: {inner.name} is not listening"

    return check


class Readiness:
    """
    The readiness of a process: the first failing check's reason, or ready.

    @ivar checks: the checks, in order.
    @ivar draining: set once the process stops: never ready again.
    """

    def __init__(self, checks: Iterable[ReadinessCheck] = ()) -> None:
        """
        @param checks: the checks.
        """
        self.checks = list(checks)
        self.draining = False

    def add(self, check: ReadinessCheck) -> None:
        """
        @param check: one more check.
        """
        self.checks.append(check)

    def reason(self) -> str | None:
        """
        @return: why the process is not ready, or C{None} if it is.
        """
        if self.draining:
            return "draining: the process is stopping"
        for check in self.checks:
            why = check()
            if why is not None:
                return why
        return None

    def answer(self) -> tuple[int, str]:
        """
        @return: the status and line of C{/readyz}.
        """
        why = self.reason()
        return (200, "ready") if why is None else (503, f"not ready: {why}")


def metricsSite(registry: CollectorRegistry, readiness: Readiness, metrics: Resource | None = None) -> Site:
    """
    @param registry: what C{/metrics} exposes.
    @param readiness: what C{/readyz} asks.
    @param metrics: the C{/metrics} resource (default: a
        L{MetricsResource} of C{registry}).
    @return: a twisted.web site with C{/metrics}, C{/healthz}, C{/readyz}
        (to serve it, or to mount its resources in an application's own
        site: C{site.resource.children}).
    """
    root = Resource()
    root.putChild(b"metrics", metrics if metrics is not None else MetricsResource(registry))
    root.putChild(b"healthz", _Text(lambda: (200, "ok")))
    root.putChild(b"readyz", _Text(readiness.answer))
    site = Site(root)
    site.displayTracebacks = False
    site.noisy = False
    return site


def _bound(address: Any) -> str:
    """
    @param address: a listening port's C{getHost()}.
    @return: C{tcp:HOST:PORT}, C{unix:PATH}, or its text.
    """
    if hasattr(address, "port") and hasattr(address, "host"):
        return f"tcp:{address.host}:{address.port}"
    if hasattr(address, "name"):
        return f"unix:{address.name.decode() if isinstance(address.name, bytes) else address.name}"
    return str(address)


class MetricsService(Service):
    """
    Serves C{/metrics}, C{/healthz} and C{/readyz} on a server endpoint
    (an L{IService <twisted.application.service.IService>}).  Start it
    before the servers it watches and stop it after them (add it to the
    parent service first): C{/readyz} then says C{starting} and
    C{draining} while they do.

    @ivar registry: the C{CollectorRegistry} served (add collectors of
        your own to it).
    @ivar collector: the L{TxGettyCollector} of the watched objects.
    @ivar readiness: the L{Readiness} of C{/readyz}.
    @ivar port: the listening port, once listening.
    """

    def __init__(self, endpoint: str, *, reactor: Any = None, servers: Iterable[Any] = (),
                 rpcServers: Iterable[Any] = (), clients: Any = (), rpcClients: Iterable[Any] = (),
                 taskPools: Iterable[Any] = (), checks: Iterable[ReadinessCheck] = (),
                 registry: CollectorRegistry | None = None, processMetrics: bool = True) -> None:
        """
        @param endpoint: a server endpoint string (C{tcp:9464:interface=127.0.0.1}).
        @param reactor: the reactor; the global one if C{None}.
        @param servers: L{Server <txgetty.Server>}s (each also a readiness check).
        @param rpcServers: RPC servers (each also a readiness check).
        @param clients: client pools, by name or as a sequence.
        @param rpcClients: RPC clients.
        @param taskPools: task pools.
        @param checks: more readiness checks.
        @param registry: the registry to serve (a new one if C{None}).
        @param processMetrics: add prometheus_client's process and
            platform collectors (CPU, memory, file descriptors, Python).
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.reactor = reactor
        self.endpoint = endpoint
        self._endpoint = serverFromString(reactor, endpoint)  # ValueError: a bad endpoint string
        servers, rpcServers = list(servers), list(rpcServers)
        self.collector = TxGettyCollector(servers, clients, rpcServers, rpcClients, taskPools)
        self.registry = registry or CollectorRegistry()
        self.registry.register(self.collector)
        if processMetrics and registry is None:
            from prometheus_client import PLATFORM_COLLECTOR, PROCESS_COLLECTOR, GC_COLLECTOR

            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        self.readiness = Readiness([serverCheck(s) for s in rpcServers + servers] + list(checks))
        self.port: Any = None

    def watch(self, servers: Iterable[Any] = (), rpcServers: Iterable[Any] = (),
              taskPools: Iterable[Any] = ()) -> None:
        """
        Add objects made after this service (each server also becomes a
        readiness check).

        @param servers: L{Server <txgetty.Server>}s.
        @param rpcServers: RPC servers.
        @param taskPools: task pools.
        """
        for rpc in rpcServers:
            self.collector.addRpcServer(rpc)
            self.readiness.add(serverCheck(rpc))
        for server in servers:
            self.collector.servers.append(server)
            self.readiness.add(serverCheck(server))
        self.collector.taskPools.extend(taskPools)

    def startService(self) -> None:
        """
        Listen (a failure to listen is logged, naming C{--metrics}).
        """
        Service.startService(self)
        self.readiness.draining = False
        d = self._endpoint.listen(self.makeSite())

        def listening(port: Any) -> None:
            self.port = port
            _log.info("txgetty metrics: /metrics, /healthz, /readyz on {endpoint} (bound to {address})",
                      endpoint=self.endpoint, address=_bound(port.getHost()))

        def failed(failure: Any) -> None:
            _log.error("txgetty metrics: cannot listen on {endpoint}: {reason}; change --metrics",
                       endpoint=self.endpoint, reason=failure.getErrorMessage(), error=type(failure.value).__name__)

        d.addCallbacks(listening, failed)

    def makeSite(self) -> Site:
        """
        @return: the site served (see L{metricsSite}).
        """
        return metricsSite(self.registry, self.readiness)

    def prepareStop(self) -> None:
        """
        The process begins to stop: C{/readyz} answers 503 from now on.
        """
        self.readiness.draining = True

    def stopService(self) -> Deferred:
        """
        Stop listening.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once the port is closed.
        """
        Service.stopService(self)
        self.readiness.draining = True
        port, self.port = self.port, None
        if port is None:
            return succeed(None)
        return maybeDeferred(port.stopListening)
