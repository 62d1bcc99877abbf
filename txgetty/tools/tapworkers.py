"""
C{twistd txgetty --workers N}: the supervisor in the twistd process, and
the factory each worker process builds its services with.

With N > 1 the twistd service is a
L{WorkerSupervisor <txgetty.workers.WorkerSupervisor>} serving the groups
C{listen} (C{--listen}) and C{rpc-listen} (C{--rpc-listen}, when an RPC
server would start).  Each worker (C{txgetty.tools.tap.makeWorkerService})
parses the same command line again (so
C{--app} and C{--service} code is imported in each worker) and builds the
service C{twistd txgetty} builds with one process, on the supervisor's
sockets: every listener description comes paired with its adopted
endpoint (see L{txgetty.server.ports}), which does the TLS of C{tls:} and
C{wss://} listeners.
"""

from __future__ import annotations

from typing import Any

from ..server.ports import takeOption
from ..transports.endpoints import isTLSDescription, tlsServerOptions
from ..workers import WorkerCommand, WorkerSupervisor

#: The worker factory of C{twistd txgetty --workers N}.
FACTORY = "txgetty.tools.tap:makeWorkerService"
#: Seconds added to a worker's own timeouts for its drain timeout.
DRAIN_MARGIN = 5.0


def servesRpc(options: Any) -> bool:
    """
    @param options: the parsed tap options.
    @return: whether an RPC server starts.
    """
    return not options["no-rpc"] and bool(options["services"] or options["demo"])


def supervisorService(options: Any, reactor: Any, metricsDirectory: str | None = None) -> Any:
    """
    @param options: the parsed tap options (C{workers} > 1).
    @param reactor: the reactor.
    @param metricsDirectory: with C{--metrics}, the directory where each
        worker serves its metrics on a UNIX socket (see
        L{txgetty.metrics.workers}).
    @return: the supervisor of C{options["workers"]} workers, each running
        C{txgetty.tools.tap.makeWorkerService} with the same command line.
    """
    groups = {"listen": list(options["listen"])}
    if servesRpc(options):
        groups["rpc-listen"] = list(options["rpc-listen"])
    workerOptions: dict[str, Any] = {"argv": list(options.argv)}
    if metricsDirectory is not None:
        workerOptions["metricsDirectory"] = metricsDirectory
    command = WorkerCommand(FACTORY, workerOptions)
    drain = options["rpc-shutdown-timeout"] + options["wait-time"] + DRAIN_MARGIN
    return WorkerSupervisor(options["workers"], groups, command, reactor=reactor, backlog=options["backlog"],
                            drainTimeout=drain)


def adoptedListeners(sockets: Any, group: str, tls: Any) -> list[tuple[str, Any]]:
    """
    @param sockets: the worker's L{AdoptedSockets <txgetty.workers.worker.AdoptedSockets>}.
    @param group: C{listen} or C{rpc-listen}.
    @param tls: the C{--tls-*} files (a L{TLSServerSettings
        <txgetty.transports.tls.TLSServerSettings>}) or C{None}.
    @return: C{(description, endpoint)} pairs for L{txgetty.Server}: one
        endpoint per listener, shared by its descriptions (the WebSocket
        URLs of one port).
    @raise txgetty.errors.ConfigError: a TLS listener's files are wrong.
    """
    pairs: list[tuple[str, Any]] = []
    for info in sockets.inGroup(group):
        first = info.descriptions[0]
        options = None
        if info.kind == "stream" and isTLSDescription(first):
            options = tlsServerOptions(takeOption(first, "maxSessions")[0], tls)
        elif info.kind == "stream" and first.startswith("wss://") and tls is not None:
            options = tls.options()
        endpoint = sockets.endpoint(info, options)
        pairs.extend((description, endpoint) for description in info.descriptions)
    return pairs

