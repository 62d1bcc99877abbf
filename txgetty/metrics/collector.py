"""
The metrics of txgetty, read at scrape time: a prometheus_client collector
that turns the plain counters of servers, sessions, client pools, task
pools and RPC servers and clients into metric families.  Nothing is
counted here: the owners bump their own integers, so that the hot path
takes no lock.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ..client.slot import STATES
from ..histogram import CallStats, Histogram
from ..server.stats import CLOSE_REASONS

#: Every metric: name (without C{_total}), type, labels, meaning.  The
#: one table docs/observability.md is tested against.
METRICS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("txgetty_sessions_open", "gauge", ("server", "listener", "transport"), "Sessions connected and not gone yet."),
    ("txgetty_sessions_opened", "counter", ("server", "listener", "transport"), "Sessions whose onOpen succeeded."),
    ("txgetty_sessions_closed", "counter", ("server", "listener", "transport", "reason"),
     "Sessions gone, by close reason: " + ", ".join(CLOSE_REASONS) + "."),
    ("txgetty_connections_refused", "counter", ("server", "listener", "transport"),
     "Connections closed at once because the listener held maxSessions."),
    ("txgetty_received_bytes", "counter", ("server", "listener", "transport"), "Bytes read from peers."),
    ("txgetty_sent_bytes", "counter", ("server", "listener", "transport"), "Bytes written to peers."),
    ("txgetty_received_packets", "counter", ("server", "listener", "transport"), "Packets decoded and delivered."),
    ("txgetty_sent_packets", "counter", ("server", "listener", "transport"), "Packets written."),
    ("txgetty_handler_errors", "counter", ("server", "listener", "transport"), "Exceptions raised by onMessage or onCron."),
    ("txgetty_read_pauses", "counter", ("server", "listener", "transport"),
     "Times a session stopped reading (backlog, task pool, unwritable, user)."),
    ("txgetty_write_buffer_full", "counter", ("server", "listener", "transport"),
     "Times more than writeHighMark bytes waited to be written."),
    ("txgetty_outbound_overflows", "counter", ("server", "listener", "transport"),
     "Sessions closed because more than maxPendingBytes waited (the outbound cap)."),
    ("txgetty_udp_dropped_datagrams", "counter", ("server", "kind"),
     "Datagrams dropped by UDP listeners, by kind: oversize, peers, backlog."),
    ("txgetty_taskpool_pending_tasks", "gauge", ("pool",), "Packets and calls handed to the pool, not finished."),
    ("txgetty_taskpool_completed_tasks", "counter", ("pool",), "Packets and calls the pool finished."),
    ("txgetty_taskpool_queue_wait_seconds", "histogram", ("pool",),
     "How long tasks waited in the pool's queue before a worker took them."),
    ("txgetty_client_slots", "gauge", ("client", "state"), "Connection slots of a client pool, by state."),
    ("txgetty_client_connect_attempts", "counter", ("client",), "Connection attempts made."),
    ("txgetty_client_connect_failures", "counter", ("client",),
     "Connection attempts that failed (refused, timed out, dropped before open)."),
    ("txgetty_rpc_server_calls", "counter", ("service", "method", "outcome"),
     "RPC calls served, by outcome: ok, cancelled, deadline, busy, or the error type."),
    ("txgetty_rpc_server_call_duration_seconds", "histogram", ("service", "method", "outcome"),
     "Time from a request's arrival to its answer (0 for refusals)."),
    ("txgetty_rpc_server_calls_in_flight", "gauge", (), "RPC calls being served."),
    ("txgetty_rpc_server_connections", "gauge", (), "Open RPC server connections."),
    ("txgetty_rpc_client_calls", "counter", ("service", "method", "outcome"),
     "RPC calls made, by outcome: ok, cancelled, deadline, busy, the remote error type or the local error."),
    ("txgetty_rpc_client_call_duration_seconds", "histogram", ("service", "method", "outcome"),
     "Time from a call to its outcome, on the client."),
    ("txgetty_rpc_client_calls_in_flight", "gauge", (), "RPC calls sent (or waiting for a connection), not done."),
)

_HELP = {name: help for name, _, _, help in METRICS}
_LABELS = {name: list(labels) for name, _, labels, _ in METRICS}

#: The session counters behind each per-listener counter.
_SESSION_METRICS = (
    ("txgetty_received_bytes", "bytesRead"), ("txgetty_sent_bytes", "bytesWritten"),
    ("txgetty_received_packets", "packetsRead"), ("txgetty_sent_packets", "packetsWritten"),
    ("txgetty_handler_errors", "handlerErrors"), ("txgetty_read_pauses", "timesPaused"),
    ("txgetty_write_buffer_full", "timesUnwritable"), ("txgetty_outbound_overflows", "overflows"),
)


def _counter(name: str) -> CounterMetricFamily:
    return CounterMetricFamily(name, _HELP[name], labels=_LABELS[name])


def _gauge(name: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, _HELP[name], labels=_LABELS[name])


def _histogram(name: str) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, _HELP[name], labels=_LABELS[name])


def _addHistogram(family: HistogramMetricFamily, labels: list[str], histogram: Histogram) -> None:
    family.add_metric(labels, histogram.cumulative(), histogram.sum)


class TxGettyCollector:
    """
    A prometheus_client collector of txgetty's objects (register it with
    a C{CollectorRegistry}; L{MetricsService <txgetty.metrics.MetricsService>}
    does).  Read in the reactor thread: the objects are not locked.

    @ivar servers: the L{Server <txgetty.Server>}s (an RPC server's own
        server included: L{addRpcServer} adds it).
    @ivar clients: the client pools, by name (the C{client} label).
    @ivar rpcServers: the RPC servers.
    @ivar rpcClients: the RPC clients.
    @ivar taskPools: the task pools.
    """

    def __init__(self, servers: Iterable[Any] = (), clients: Mapping[str, Any] | Sequence[Any] = (),
                 rpcServers: Iterable[Any] = (), rpcClients: Iterable[Any] = (),
                 taskPools: Iterable[Any] = ()) -> None:
        """
        @param servers: L{Server <txgetty.Server>}s.
        @param clients: L{Client <txgetty.Client>} pools by name, or a
            sequence of them (named C{client-0}, C{client-1}, ...).
        @param rpcServers: L{RpcServer <txgetty.rpc.RpcServer>}s (their
            servers are added to C{servers}).
        @param rpcClients: L{RpcClient <txgetty.rpc.RpcClient>}s.
        @param taskPools: L{TaskPool <txgetty.taskpool.TaskPool>}s.
        """
        self.servers: list[Any] = list(servers)
        self.clients: dict[str, Any] = (dict(clients) if isinstance(clients, Mapping)
                                        else {f"client-{i}": c for i, c in enumerate(clients)})
        self.rpcServers: list[Any] = []
        self.rpcClients: list[Any] = []
        self.taskPools: list[Any] = list(taskPools)
        for rpc in rpcServers:
            self.addRpcServer(rpc)
        for client in rpcClients:
            self.addRpcClient(client)

    def addRpcServer(self, rpc: Any) -> None:
        """
        @param rpc: an RPC server (its calls are counted from now on); its
            server's sessions are counted too.
        """
        self.rpcServers.append(rpc)
        rpc.callStats.watch()
        if rpc.server not in self.servers:
            self.servers.append(rpc.server)

    def addRpcClient(self, client: Any) -> None:
        """
        @param client: an RPC client (its calls are counted from now on).
        """
        self.rpcClients.append(client)
        client.callStats.watch()

    def describe(self) -> list[Metric]:
        """
        @return: nothing (the registry then does not collect at register
            time, before the objects run).
        """
        return []

    def collect(self) -> Iterator[Metric]:
        """
        @return: every metric family of L{METRICS}, read now.
        """
        yield from self._servers()
        yield from self._taskPools()
        yield from self._clients()
        yield from self._calls("server", self.rpcServers)
        yield from self._calls("client", self.rpcClients)

    def _servers(self) -> Iterator[Metric]:
        families = {name: _counter(name) for name, _ in _SESSION_METRICS}
        open_, opened = _gauge("txgetty_sessions_open"), _counter("txgetty_sessions_opened")
        closed, refused = _counter("txgetty_sessions_closed"), _counter("txgetty_connections_refused")
        drops = _counter("txgetty_udp_dropped_datagrams")
        for server in self.servers:
            for stats, live, refusedFull in server.listenerStats():
                labels = [server.name, stats.listener, stats.transport]
                open_.add_metric(labels, len(live))
                opened.add_metric(labels, stats.opened)
                refused.add_metric(labels, refusedFull)
                for reason, n in stats.closed.items():
                    closed.add_metric(labels + [reason], n)
                totals = stats.totals(live)
                for name, attribute in _SESSION_METRICS:
                    families[name].add_metric(labels, totals[attribute])
            for kind, n in server.datagramDrops().items():
                drops.add_metric([server.name, kind], n)
        yield from (open_, opened, closed, refused, *families.values(), drops)

    def _taskPools(self) -> Iterator[Metric]:
        pending, completed = _gauge("txgetty_taskpool_pending_tasks"), _counter("txgetty_taskpool_completed_tasks")
        waits = _histogram("txgetty_taskpool_queue_wait_seconds")
        for pool in self.taskPools:
            pending.add_metric([pool.name], pool.pending)
            completed.add_metric([pool.name], pool.completed)
            _addHistogram(waits, [pool.name], pool.queueWaits())
        yield from (pending, completed, waits)

    def _clients(self) -> Iterator[Metric]:
        slots = _gauge("txgetty_client_slots")
        attempts, failures = _counter("txgetty_client_connect_attempts"), _counter("txgetty_client_connect_failures")
        for name, client in self.clients.items():
            states = client.slotStates()
            for state in STATES:
                slots.add_metric([name, state.name], states.count(state.name))
            attempts.add_metric([name], client.dials)
            failures.add_metric([name], client.failures)
        yield from (slots, attempts, failures)

    def _calls(self, side: str, owners: list[Any]) -> Iterator[Metric]:
        calls = _counter(f"txgetty_rpc_{side}_calls")
        durations = _histogram(f"txgetty_rpc_{side}_call_duration_seconds")
        inFlight = _gauge(f"txgetty_rpc_{side}_calls_in_flight")
        merged: dict[tuple[str, str, str], Histogram] = {}
        for owner in owners:
            stats: CallStats = owner.callStats
            for key, histogram in stats.items():
                merged.setdefault(key, Histogram(histogram.bounds)).add(histogram)
        for key, histogram in sorted(merged.items()):
            calls.add_metric(list(key), histogram.count)
            _addHistogram(durations, list(key), histogram)
        if side == "server":
            inFlight.add_metric([], sum(rpc.status()["inFlight"] for rpc in owners))
            connections = _gauge("txgetty_rpc_server_connections")
            connections.add_metric([], sum(len(rpc.connections) for rpc in owners))
            yield from (calls, durations, inFlight, connections)
        else:
            inFlight.add_metric([], sum(client.inFlight for client in owners))
            yield from (calls, durations, inFlight)
