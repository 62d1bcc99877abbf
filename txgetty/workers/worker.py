"""
A worker process: C{python -m txgetty.workers}, started by a
L{WorkerSupervisor <txgetty.workers.supervisor.WorkerSupervisor>} with its
configuration in C{$TXGETTY_WORKER} (see L{txgetty.workers.command}).

It adopts its slot's sockets (L{AdoptedSockets}), builds its services with
the configured factory, starts them, and reports ready on the control
channel once every service with a C{whenListening()} listens.  Its log
events go to the supervisor over the channel.  It reports how many of the
connections it received are still open, soon after each change (for the
balancing).

On C{SIGTERM} or C{SIGINT} (or the end of the control channel: the
supervisor is gone) it drains: it tells the supervisor, which stops
sending connections and answers C{bye}; then it stops its services (which
stop listening, let work in flight finish up to their own timeouts, and
close their connections), and exits 0.  C{SIGHUP} is ignored (the
supervisor reloads; a worker must not die of a hang-up sent to its
process group).  If its services cannot be built or started, it exits 3.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import sys
from typing import Any, Callable, Iterator

from twisted.application.service import IService, IServiceCollection
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    Logger,
    eventAsJSON,
    formatEvent,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from ..errors import ConfigError
from .adopted import AdoptedDatagramEndpoint, AdoptedStreamEndpoint, ConnectionReceiver
from .channel import MAX_MESSAGE, ControlChannel, IChannelReceiver
from .command import CONFIG_ENV, ListenerInfo, WorkerConfig

_log = Logger()

#: Seconds a draining worker waits for the supervisor's C{bye}.
BYE_TIMEOUT = 5.0
#: The exit status of a worker whose services could not start.
EXIT_START_FAILED = 3


class AdoptedSockets:
    """
    The listeners of a worker's slot, as endpoints to serve on.

    @ivar listeners: every listener, in the supervisor's order.
    """

    def __init__(self, reactor: Any, listeners: list[ListenerInfo], receiver: ConnectionReceiver) -> None:
        """
        @param reactor: the worker's reactor.
        @param listeners: from the worker's configuration.
        @param receiver: routes handed-over connections to the endpoints.
        """
        self.reactor = reactor
        self.listeners = list(listeners)
        self.receiver = receiver
        self._datagram: dict[str, AdoptedDatagramEndpoint] = {}

    def groups(self) -> list[str]:
        """
        @return: the listener groups, in order.
        """
        return list(dict.fromkeys(info.group for info in self.listeners))

    def inGroup(self, group: str) -> list[ListenerInfo]:
        """
        @param group: e.g. C{"listen"}.
        @return: its listeners.
        """
        return [info for info in self.listeners if info.group == group]

    def endpoint(self, info: ListenerInfo, tls: Any = None) -> Any:
        """
        @param info: one of L{listeners}.
        @param tls: for a stream listener, TLS server options to wrap each
            connection in.
        @return: an L{AdoptedStreamEndpoint} or the (one) L{AdoptedDatagramEndpoint}
            of the listener.
        """
        label = ", ".join(info.descriptions)
        if info.kind == "datagram":
            if info.id not in self._datagram:
                if info.fd is None:
                    raise ConfigError(f"the datagram listener {label} came without a socket")
                self._datagram[info.id] = AdoptedDatagramEndpoint(self.reactor, info.fd, info.family, label)
            return self._datagram[info.id]
        return AdoptedStreamEndpoint(self.receiver, info.id, info.family, info.address, label, tls)

    def endpoints(self, group: str, tls: Any = None) -> list[Any]:
        """
        @param group: a listener group.
        @param tls: as for L{endpoint} (stream listeners only).
        @return: an endpoint per listener of the group.
        """
        return [self.endpoint(info, tls) for info in self.inGroup(group)]


@implementer(ILogObserver)
class ChannelLogObserver:
    """
    Sends log events to the supervisor; while the channel is down, writes
    those of level warn and above to stderr (which the supervisor logs too).
    """

    def __init__(self, runtime: WorkerRuntime, fallback: Callable[[dict], None]) -> None:
        self.runtime = runtime
        self.fallback = fallback

    def __call__(self, event: dict) -> None:
        """
        @param event: a log event of this worker.
        """
        channel = self.runtime.channel
        if channel is None or channel.lost:
            if event.get("log_level") in (LogLevel.warn, LogLevel.error, LogLevel.critical):
                self.fallback(event)
            return
        channel.send({"t": "log", "event": eventText(event)})


def eventText(event: dict) -> str:
    """
    @param event: a log event.
    @return: its JSON for the supervisor: the fields that survive JSON, and
        the message formatted here (a format that reads attributes of its
        fields, C{{session.name}}, could not be formatted from the JSON), cut
        to fit in a control message.
    """
    sent = {k: v for k, v in event.items() if k not in _OBJECTS}
    sent["log_format"] = "{log_text}"
    sent["log_text"] = formatEvent(event)
    text = eventAsJSON(sent)
    if len(text) > MAX_MESSAGE - 100:
        short = {k: sent[k] for k in _KEPT if k in sent}
        short["log_text"] = f"{sent['log_text'][:2000]} (a log event of {len(text)} bytes, cut)"
        text = eventAsJSON(short)
    return text


#: The fields of an event that are objects of the worker (not sent).
_OBJECTS = ("log_logger", "log_source", "log_observer")
#: The fields kept in an event cut to fit a control message.
_KEPT = ("log_format", "log_level", "log_namespace", "log_time", "log_system")


@implementer(IChannelReceiver)
class WorkerRuntime:
    """
    Runs the services of one worker process.

    @ivar config: the worker's configuration.
    @ivar channel: the control channel, while open.
    @ivar service: the services the factory built, once built.
    @ivar exitCode: the process's exit status once it stops.
    """

    def __init__(self, reactor: Any, config: WorkerConfig, channelSocket: socket.socket | None = None) -> None:
        """
        @param reactor: the worker's reactor.
        @param config: its configuration.
        @param channelSocket: its end of the control channel (default: the
            configured descriptor).
        """
        self.reactor = reactor
        self.config = config
        if channelSocket is None:
            channelSocket = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=config.control)
        self.channel: ControlChannel | None = ControlChannel(reactor, channelSocket, self, "to the supervisor")
        self.receiver = ConnectionReceiver(reactor, self._loadChanged)
        self.sockets = AdoptedSockets(reactor, config.listeners, self.receiver)
        self.service: IService | None = None
        self.exitCode = 0
        self._bye: Deferred | None = None
        self._stopping: Deferred | None = None
        self._reported = (-1, -1)
        self._reporter: Any = None

    # -- start -----------------------------------------------------------------

    def start(self) -> Deferred:
        """
        Build and start the services; report ready.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once ready was reported (or the start
            failed, which stops the reactor with L{EXIT_START_FAILED}).
        """
        assert self.channel is not None
        self.channel.start()
        d = maybeDeferred(self._build)
        d.addCallback(self._startServices)
        d.addCallbacks(self._ready, self._startFailed)
        return d

    def _build(self) -> Any:
        """
        @return: the factory's service (or a L{Deferred <twisted.internet.defer.Deferred>} of it).
        """
        factory = loadFactory(self.config.factory)
        return factory(self.config.options, self.sockets, self.reactor)

    def _startServices(self, service: IService) -> Deferred:
        """
        Start the services; wait until those that listen do.
        """
        self.service = IService(service)
        self.service.startService()
        waits = [maybeDeferred(s.whenListening) for s in _walk(self.service) if callable(getattr(s, "whenListening",
                                                                                                   None))]
        return gatherResults(waits, consumeErrors=True)

    def _ready(self, _: Any) -> None:
        """
        Report ready (and the connections received so far).
        """
        _log.info("txgetty worker {worker} (pid {pid}) is ready", worker=self.config.slot, pid=os.getpid())
        self._send({"t": "ready"})
        self._reportLoad()

    def _startFailed(self, failure: Failure) -> None:
        """
        The services could not start: log why, exit.
        """
        _log.failure("txgetty worker {worker} (pid {pid}) cannot start its services", failure, LogLevel.error,
                     worker=self.config.slot, pid=os.getpid())
        self.exitCode = EXIT_START_FAILED
        if self.reactor.running:
            self.reactor.stop()

    def _send(self, message: dict) -> None:
        """
        Send a message to the supervisor, if the channel is open.
        """
        if self.channel is not None:
            self.channel.send(message)

    def _loadChanged(self) -> None:
        """
        A connection came or went: report the counts soon (changes within
        C{loadInterval} go in one report).
        """
        if self._reporter is None and self._stopping is None:
            self._reporter = self.reactor.callLater(self.config.loadInterval, self._reportLoad)

    def _reportLoad(self) -> None:
        """
        Send the open-connection count, if it changed since the last report.
        """
        self._reporter = None
        now = (self.receiver.live, self.receiver.received)
        if now != self._reported:
            self._reported = now
            self._send({"t": "load", "live": now[0], "received": now[1]})

    # -- IChannelReceiver --------------------------------------------------------

    def messageReceived(self, message: dict, fds: list[int]) -> None:
        """
        @param message: from the supervisor.
        @param fds: the descriptors it carried.
        """
        kind = message.get("t")
        if kind == "conn" and len(fds) == 1:
            self.receiver.connectionReceived(str(message.get("l")), fds[0])
            return
        for fd in fds:
            os.close(fd)
        if kind == "bye":
            self._gotBye()
        else:
            _log.warn("txgetty worker {worker} (pid {pid}): unknown control message {message!r}",
                      worker=self.config.slot, pid=os.getpid(), message=message)

    def channelLost(self, reason: Failure) -> None:
        """
        The supervisor is gone (or this side closed): drain and exit.

        @param reason: why.
        """
        self.channel = None
        self._gotBye()
        if self._stopping is None and self.reactor.running:
            _log.warn("txgetty worker {worker} (pid {pid}): the supervisor closed the control channel; draining "
                      "and exiting", worker=self.config.slot, pid=os.getpid())
            self.reactor.stop()

    def _gotBye(self) -> None:
        """
        The supervisor sends no more connections.
        """
        d, self._bye = self._bye, None
        if d is not None:
            d.callback(None)

    # -- stop ------------------------------------------------------------------

    def stop(self) -> Deferred:
        """
        Drain: tell the supervisor, wait for its C{bye}, stop the services,
        close the channel.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once the services stopped.
        """
        if self._stopping is not None:
            return self._stopping
        if self._reporter is not None and self._reporter.active():
            self._reporter.cancel()
        self._reporter = None
        _log.info("txgetty worker {worker} (pid {pid}) drains", worker=self.config.slot, pid=os.getpid())
        self._stopping = self._waitForBye()
        self._stopping.addCallback(lambda _: self._stopServices())
        self._stopping.addBoth(self._stopped)
        return self._stopping

    def _waitForBye(self) -> Deferred:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once no more connections come.
        """
        if self.channel is None or self.channel.lost:
            return succeed(None)
        self._bye = Deferred()
        d = self._bye
        self.channel.send({"t": "draining"})
        d.addTimeout(BYE_TIMEOUT, self.reactor, onTimeoutCancel=lambda *_: None)
        return d

    def _stopServices(self) -> Any:
        """
        Stop the services (they drain).
        """
        if self.service is None or not self.service.running:
            return None
        return self.service.stopService()

    def _stopped(self, result: Any) -> None:
        """
        The services stopped: close the channel.
        """
        if isinstance(result, Failure):
            _log.failure("txgetty worker {worker} (pid {pid}): stopping its services failed", result, LogLevel.error,
                         worker=self.config.slot, pid=os.getpid())
        _log.info("txgetty worker {worker} (pid {pid}) stopped", worker=self.config.slot, pid=os.getpid())
        if self.channel is not None:
            channel, self.channel = self.channel, None
            # Flush what is queued (the last log lines), then close.
            channel.doWrite()
            channel.close()


def _walk(service: Any) -> Iterator[Any]:
    """
    @return: a service and every service under it.
    """
    yield service
    if IServiceCollection.providedBy(service):
        for child in service:
            yield from _walk(child)


def loadFactory(spec: str) -> Callable[..., Any]:
    """
    @param spec: C{MODULE:CALLABLE}.
    @return: the callable.
    @raise ConfigError: it cannot be imported, or is not callable.
    """
    moduleName, _, name = spec.partition(":")
    try:
        obj: Any = importlib.import_module(moduleName)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"cannot load the worker factory {spec!r}: {e}") from None
    if not callable(obj):
        raise ConfigError(f"the worker factory {spec!r} is not callable")
    return obj


def main(environ: Any = None) -> None:
    """
    Run a worker with the configuration in C{$TXGETTY_WORKER}; exit with its
    status.
    """
    environ = os.environ if environ is None else environ
    text = environ.get(CONFIG_ENV)
    if not text:
        sys.exit(f"txgetty worker: ${CONFIG_ENV} is not set: workers are started by a supervisor "
                 f"(twistd txgetty --workers N)")
    try:
        config = WorkerConfig.fromJSON(text)
    except ConfigError as e:
        sys.exit(f"txgetty worker: {e}")
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from twisted.internet import reactor

    runtime = WorkerRuntime(reactor, config)
    level = LogLevel.levelWithName(config.logLevel)
    observer = ChannelLogObserver(runtime, textFileLogObserver(sys.stderr))
    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    globalLogBeginner.beginLoggingTo([FilteringLogObserver(observer, [predicate])], redirectStandardIO=False)
    reactor.callWhenRunning(runtime.start)
    reactor.addSystemEventTrigger("before", "shutdown", runtime.stop)
    reactor.run()
    sys.exit(runtime.exitCode)

