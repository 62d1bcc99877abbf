"""
The worker supervisor: an L{IService <twisted.application.service.IService>}
that binds every listener once, runs N worker processes, hands them the
stream connections it accepts (and each its own C{SO_REUSEPORT} socket of
every datagram listener), restarts the workers that die, drains them all on
stop, and replaces them one at a time on C{SIGHUP} (see docs/workers.md).

It runs under C{twistd -n} or C{twist} as any service: their C{SIGTERM} /
C{SIGINT} handling stops the reactor, which stops this service, which
drains every worker before the process exits.
"""

from __future__ import annotations

import os
import random
import signal
from typing import Any, Callable, Mapping, Sequence

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.error import ProcessTerminated
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ..config import DEFAULT_LISTEN_BACKLOG
from ..errors import ConfigError
from ..client.reconnect import ReconnectPolicy
from .balancer import Acceptor, Balancer
from .command import FIRST_SOCKET_FD, IWorkerCommand, ListenerInfo, WorkerConfig
from .process import WorkerProcess
from .slot import DEFAULT_RESTART_POLICY, READY, Slot
from .sockets import ListenSpec, OpenedListener, listenSpecs, openListener, systemdDescriptor

_log = Logger()

#: Seconds a new worker has to report ready.
DEFAULT_READY_TIMEOUT = 30.0
#: Seconds a worker has to exit after SIGTERM before it is killed (keep it
#: above the workers' own shutdown timeouts: C{--rpc-shutdown-timeout},
#: C{--wait-time}).
DEFAULT_DRAIN_TIMEOUT = 30.0


def workerCount(text: str | int) -> int:
    """
    @param text: C{"auto"} (the number of CPUs), or a whole number of 1 or
        more.
    @return: the number of workers.
    @raise ConfigError: anything else.
    """
    if text == "auto":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    try:
        count = int(text) if isinstance(text, str) or type(text) is int else 0
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"the number of workers must be a whole number of 1 or more, or auto; got {text!r}")
    return count


class WorkerSupervisor(MultiService):
    """
    Runs N workers serving the same listeners.

    @ivar slots: the worker slots.
    @ivar listeners: the bound listeners, by id (once started).
    @ivar balancer: who gets the next stream connection.
    @ivar generations: workers started so far.
    """

    def __init__(self, workers: int, listeners: Mapping[str, Sequence[str]], command: IWorkerCommand, *,
                 reactor: Any = None, backlog: int = DEFAULT_LISTEN_BACKLOG,
                 restartPolicy: ReconnectPolicy = DEFAULT_RESTART_POLICY,
                 readyTimeout: float = DEFAULT_READY_TIMEOUT, drainTimeout: float = DEFAULT_DRAIN_TIMEOUT,
                 handleSIGHUP: bool = True, rng: random.Random | None = None,
                 systemd: Callable[[ListenSpec], int] = systemdDescriptor,
                 observer: Callable[[dict], None] | None = None) -> None:
        """
        @param workers: how many worker processes (1 or more).
        @param listeners: listener descriptions by group (e.g.
            C{{"listen": [...], "rpc-listen": [...]}}); workers find them by
            group in their L{AdoptedSockets <txgetty.workers.worker.AdoptedSockets>}.
        @param command: how to start a worker.
        @param reactor: the reactor (the global one if C{None}).
        @param backlog: the listen backlog of stream listeners that name
            none.
        @param restartPolicy: the backoff between restarts of a dying worker.
        @param readyTimeout: seconds a new worker has to report ready.
        @param drainTimeout: seconds a worker has to exit after SIGTERM.
        @param handleSIGHUP: reload on C{SIGHUP} while running.
        @param rng: the backoff's jitter source.
        @param systemd: finds the descriptor systemd passed for a
            C{systemd:} listener (by default as Twisted's C{systemd:}
            endpoint does).
        @param observer: where the workers' log events go (default: the
            global log publisher).
        @raise ConfigError: a listener cannot be bound by a supervisor, or a
            number is wrong.
        """
        super().__init__()
        self.name = "txgetty workers"  # type: ignore[assignment]  # Service.name: None in Twisted's class body
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.count = workerCount(workers)
        if readyTimeout <= 0 or drainTimeout <= 0:
            raise ConfigError("readyTimeout and drainTimeout must be more than 0 seconds")
        self.reactor = reactor
        self.command = command
        self.readyTimeout = readyTimeout
        self.handleSIGHUP = handleSIGHUP
        self.systemd = systemd
        self.observer = observer
        self.specs: list[tuple[str, ListenSpec, list[str]]] = []
        for group, descriptions in listeners.items():
            for spec in listenSpecs(list(descriptions), backlog):
                served = [d for d in descriptions if d == spec.description or _sameSocket(spec, d, backlog)]
                self.specs.append((group, spec, served))
        if not self.specs:
            raise ConfigError("a worker supervisor needs at least one listener")
        self.balancer = Balancer(reactor)
        rng = rng or random.Random()
        self.slots = [Slot(i, self, reactor, policy=restartPolicy, drainTimeout=drainTimeout, rng=rng)
                      for i in range(self.count)]
        self.listeners: dict[str, OpenedListener] = {}
        self.generations = 0
        self._acceptors: list[Acceptor] = []
        self._infos: list[ListenerInfo] = []
        self._reload: Deferred | None = None
        self._reloadAgain: list[Deferred] = []
        self._previousHUP: Any = None
        self._readyWaiters: list[Deferred] = []
        self._stopWaiters: list[Deferred] | None = None

    # -- IService --------------------------------------------------------------

    def startService(self) -> None:
        """
        Bind every listener, start the workers.

        @raise twisted.internet.error.CannotListenError: a listener cannot be
            bound (nothing stays bound then).
        @raise ConfigError: a systemd socket is missing.
        """
        self._bindAll()
        super().startService()
        for info in self._infos:
            if info.kind == "stream":
                opened = self.listeners[info.id]
                acceptor = Acceptor(self.reactor, opened.sockets[0], info.id, self.balancer,
                                    ", ".join(info.descriptions))
                acceptor.start()
                self._acceptors.append(acceptor)
            _log.info("txgetty workers: {endpoint} bound at {address} for {count} workers",
                      endpoint=", ".join(info.descriptions), address=_formatBound(info.address),
                      count=self.count)
        if self.handleSIGHUP:
            self._previousHUP = signal.signal(signal.SIGHUP, self._onSIGHUP)
        for slot in self.slots:
            slot.start()

    def _bindAll(self) -> None:
        """
        Bind the listeners (all or none).
        """
        try:
            for index, (group, spec, served) in enumerate(self.specs):
                opened = openListener(spec, self.count, self.systemd)
                listenerId = f"L{index}"
                self.listeners[listenerId] = opened
                address = list(opened.address) if isinstance(opened.address, tuple) else opened.address
                self._infos.append(ListenerInfo(listenerId, group, served, spec.kind, spec.family, address))
        except BaseException:
            self._closeListeners()
            raise

    def stopService(self) -> Deferred:
        """
        Stop accepting, drain every worker (SIGTERM; SIGKILL after
        C{drainTimeout}), close the sockets.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once every worker exited.
        """
        if not self.running:
            return succeed(None)
        super().stopService()
        if self._previousHUP is not None:
            signal.signal(signal.SIGHUP, self._previousHUP)
            self._previousHUP = None
        for acceptor in self._acceptors:
            acceptor.stop()
        self._acceptors = []
        for opened in self.listeners.values():
            if opened.spec.kind == "stream":
                opened.close()
        _log.info("txgetty workers: stopping {count} workers (each drains its connections)", count=self.count)
        if self._stopWaiters is None:
            self._stopWaiters = []
        d = DeferredList([slot.stop() for slot in self.slots], consumeErrors=True)
        return d.addCallback(self._stopped)

    def whenStopped(self) -> Deferred:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once
            a stop (begun or to come) ended: every worker exited (at once
            if the supervisor does not run and no stop is under way).
        """
        if not self.running and self._stopWaiters is None:
            return succeed(None)
        d: Deferred = Deferred()
        if self._stopWaiters is None:
            self._stopWaiters = []
        self._stopWaiters.append(d)
        return d

    def _stopped(self, _: Any) -> None:
        """
        Every worker exited.
        """
        self._closeListeners()
        _log.info("txgetty workers: every worker exited")
        waiters, self._stopWaiters = self._stopWaiters or [], None
        for waiter in waiters:
            waiter.callback(None)

    def _closeListeners(self) -> None:
        """
        Close every socket bound here.
        """
        for opened in self.listeners.values():
            opened.close()
        self.listeners = {}
        self._infos = []

    # -- ISlotHost -------------------------------------------------------------

    def spawnWorker(self, slot: Slot) -> WorkerProcess:
        """
        Start a worker process for a slot (with the slot's datagram sockets).

        @param slot: the slot.
        @return: the worker (if it cannot start, it ends at once, so the
            slot backs off).
        """
        self.generations += 1
        worker = WorkerProcess(slot, slot.index, self.generations, self.reactor, self.observer)
        childFDs: dict[int, int] = {}
        infos = []
        for info in self._infos:
            fd = None
            if info.kind == "datagram":
                fd = FIRST_SOCKET_FD + len(childFDs)
                childFDs[fd] = self.listeners[info.id].sockets[slot.index].fileno()
            infos.append(ListenerInfo(info.id, info.group, info.descriptions, info.kind, info.family,
                                      info.address, fd))
        config = WorkerConfig(slot.index, self.generations, "", listeners=infos, supervisorPid=os.getpid())
        try:
            worker.spawn(self.command, config, childFDs, self.readyTimeout)
        except Exception:
            _log.failure("txgetty workers: cannot start a worker for slot {worker}", level=LogLevel.error,
                         worker=slot.index)
            worker.exited = True
            self.reactor.callLater(0, slot.workerExited, worker, Failure(ProcessTerminated(exitCode=127)))
        else:
            _log.info("txgetty workers: started worker {worker} (pid {pid})", worker=slot.index, pid=worker.pid)
        return worker

    def route(self, worker: Any) -> None:
        """
        @param worker: takes connections now.
        """
        self.balancer.add(worker)
        if all(slot.state == READY for slot in self.slots):
            waiters, self._readyWaiters = self._readyWaiters, []
            for d in waiters:
                d.callback(self)

    def unroute(self, worker: Any) -> None:
        """
        @param worker: takes no more connections.
        """
        self.balancer.remove(worker)

    # -- reload ------------------------------------------------------------------

    def _onSIGHUP(self, signum: int, frame: Any) -> None:
        """
        The signal handler: reload from the reactor thread.
        """
        self.reactor.callFromThread(self.reload)

    def reload(self) -> Deferred:
        """
        Replace every worker, one slot at a time: the new worker of a slot
        starts beside the old one, serves once it reported ready, and only
        then the old one drains; the next slot waits until it exited.  If a
        new worker does not become ready, it is killed, the old one stays,
        and the reload ends there.  A reload asked for during one runs once
        it ended.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the number of slots replaced (by
            the reload this call asked for: the one to come, if one is running).
        """
        if self._reload is not None:
            again: Deferred = Deferred()
            self._reloadAgain.append(again)
            return again
        _log.info("txgetty workers: reloading {count} workers, one at a time", count=self.count)
        self._reload = Deferred()
        self._reloadSlot(0, 0)
        return self._reload

    def _reloadSlot(self, index: int, replaced: int) -> None:
        """
        Reload slot C{index} then the next, or end the reload.
        """
        if index == len(self.slots) or not self.running:
            self._endReload(replaced, index)
            return

        def done(ok: bool) -> None:
            if ok:
                self._reloadSlot(index + 1, replaced + 1)
            else:
                _log.error("txgetty workers: reload stopped at worker {worker}: the other workers keep their code",
                           worker=index)
                self._endReload(replaced, index)

        self.slots[index].reload().addCallback(done)

    def _endReload(self, replaced: int, reached: int) -> None:
        """
        The reload is over (perhaps start the one asked for meanwhile).
        """
        d, self._reload = self._reload, None
        if reached == len(self.slots):
            _log.info("txgetty workers: reload done: {count} of {total} slots run new workers",
                      count=replaced, total=self.count)
        if d is not None:
            d.callback(replaced)
        waiting, self._reloadAgain = self._reloadAgain, []
        if waiting and self.running:
            def relay(count: int) -> int:
                for w in waiting:
                    w.callback(count)
                return count

            self.reload().addCallback(relay)
        else:
            for w in waiting:
                w.callback(0)

    # -- state -------------------------------------------------------------------

    def whenReady(self) -> Deferred:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with this supervisor once every slot
            has a ready worker (at once if they have).
        """
        if all(slot.state == READY for slot in self.slots):
            return succeed(self)
        d: Deferred = Deferred()
        self._readyWaiters.append(d)
        return d

    def addresses(self, group: str | None = None) -> list[Any]:
        """
        @param group: only this group's listeners (default: every one).
        @return: the bound addresses, C{(host, port)} or a UNIX path, in
            the order given.
        """
        return [self.listeners[info.id].address for info in self._infos if group in (None, info.group)]

    def status(self) -> list[dict[str, Any]]:
        """
        @return: per slot: its state, its worker's pid, restarts, and the
            connections handed to its current worker.
        """
        return [{"slot": slot.index, "state": slot.state, "pid": getattr(slot.current, "pid", None),
                 "restarts": slot.restarts, "handed": getattr(slot.current, "sent", 0)} for slot in self.slots]


def _sameSocket(spec: ListenSpec, description: str, backlog: int) -> bool:
    """
    @return: whether a description is served by a spec's socket (the
        WebSocket URLs of one port).
    """
    from .sockets import listenSpec

    return spec.port != 0 and listenSpec(description, backlog).key == spec.key


def _formatBound(address: Any) -> str:
    """
    @return: a bound address for logs.
    """
    if isinstance(address, (list, tuple)):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)
