"""
The supervisor's side of its stream listeners: an L{Acceptor} per listening
socket accepts connections and hands each to the worker the L{Balancer}
picks.  The workers take turns (round robin), so that any burst of
connections is dealt out exactly evenly; but a worker that has held clearly
more open connections than the least loaded one (more than L{SLACK} or
L{SLACK_SHARE} of the mean, whichever is more) for L{SETTLE} seconds in a
row misses its turns until it is back within that margin: a worker started
later (a restart, a reload) thus gets the new connections until it has
caught up.  The load of a worker is the open connections it last reported
plus those handed to it since; its reports come a few milliseconds after
each change, so a worker that just closed many connections can look less
loaded than the others for a moment: the settle time keeps such a moment
from skewing a burst.

While no worker is ready, the acceptors stop accepting: connections wait in
the kernel's accept queue (up to the backlog) until one is.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any, Protocol

from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..tally import Tally

_log = Logger()

#: Connections accepted per wake-up of a listener at most.
ACCEPTS_PER_TURN = 64
#: Seconds an acceptor pauses when the process is out of descriptors.
FD_PAUSE = 0.5
#: Open connections above the least loaded worker's that are always tolerated.
SLACK = 4
#: The share of the mean load above the least loaded worker's that is tolerated.
SLACK_SHARE = 0.2
#: Seconds a worker must stay over the margin before it misses its turns.
SETTLE = 0.5
#: The C{accept()} errors that end one connection, not the listener.
_TRANSIENT = (errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR)
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class IBalancedWorker(Protocol):
    """
    What the balancer needs of a worker.
    """

    load: int
    label: str

    def sendConnection(self, listenerId: str, fd: int) -> bool: ...


class Balancer:
    """
    The ready workers, and which one gets the next connection.

    @ivar workers: the workers connections go to.
    @ivar handed: connections handed over so far.
    """

    def __init__(self, clock: Any) -> None:
        """
        @param clock: an L{IReactorTime <twisted.internet.interfaces.IReactorTime>} (for L{SETTLE}).
        """
        self.clock = clock
        self.workers: list[IBalancedWorker] = []
        self.handed = 0
        self._next = 0
        self._acceptors: list[Acceptor] = []
        self._overSince: dict[int, float] = {}

    def watch(self, acceptor: Acceptor) -> None:
        """
        @param acceptor: accepts while a worker is ready.
        """
        self._acceptors.append(acceptor)
        acceptor.setAccepting(bool(self.workers))

    def unwatch(self, acceptor: Acceptor) -> None:
        """
        @param acceptor: stopped.
        """
        if acceptor in self._acceptors:
            self._acceptors.remove(acceptor)

    def add(self, worker: IBalancedWorker) -> None:
        """
        @param worker: ready for connections.
        """
        if worker not in self.workers:
            self.workers.append(worker)
            self._changed()

    def remove(self, worker: IBalancedWorker) -> None:
        """
        @param worker: takes no more connections.
        """
        if worker in self.workers:
            self.workers.remove(worker)
            self._overSince.pop(id(worker), None)
            self._changed()

    def _changed(self) -> None:
        """
        Tell the acceptors whether to accept.
        """
        for acceptor in self._acceptors:
            acceptor.setAccepting(bool(self.workers))

    def pick(self) -> IBalancedWorker | None:
        """
        @return: the worker for the next connection (the next in turn that
            is not kept out for holding too many), or C{None} if none is
            ready.
        """
        workers = self.workers
        if not workers:
            return None
        loads = [worker.load for worker in workers]
        least = min(loads)
        margin = max(SLACK, SLACK_SHARE * sum(loads) / len(loads))
        now = self.clock.seconds()
        out = set()
        for worker, load in zip(workers, loads):
            key = id(worker)
            if load - least > margin:
                if now - self._overSince.setdefault(key, now) >= SETTLE:
                    out.add(key)
            else:
                self._overSince.pop(key, None)
        count = len(workers)
        for step in range(count):
            index = (self._next + step) % count
            if id(workers[index]) not in out:
                self._next = index + 1
                return workers[index]
        raise AssertionError("the least loaded worker is never kept out")

    def hand(self, listenerId: str, fd: int) -> bool:
        """
        Give a connection to the worker L{pick} chooses; if that worker's
        channel is broken (it just died), drop the worker and pick again.

        @param listenerId: its listener.
        @param fd: its descriptor (closed once sent, or here if no worker
            takes it).
        @return: whether a worker got it.
        """
        while True:
            worker = self.pick()
            if worker is None:
                os.close(fd)
                return False
            if worker.sendConnection(listenerId, fd):
                self.handed += 1
                return True
            self.remove(worker)


@implementer(IReadDescriptor)
class Acceptor:
    """
    Accepts the connections of one listening socket for the balancer.

    @ivar accepted: connections accepted so far.
    @ivar dropped: connections closed because no worker could take them.
    """

    def __init__(self, reactor: Any, sock: socket.socket, listenerId: str, balancer: Balancer,
                 label: str = "") -> None:
        """
        @param reactor: an L{IReactorFDSet <twisted.internet.interfaces.IReactorFDSet>} and clock.
        @param sock: a listening, non-blocking stream socket (still owned by
            the caller).
        @param listenerId: the listener's id in the workers' configuration.
        @param balancer: picks the worker of each connection.
        @param label: names the listener in logs.
        """
        self.reactor = reactor
        self.socket = sock
        self.listenerId = listenerId
        self.balancer = balancer
        self.label = label
        self.accepted = self.dropped = 0
        self.drops = Tally(
            reactor,
            "txgetty supervisor: {endpoint}: no worker could take a connection from the kernel (every worker "
            "is gone or its control channel broke): closed; further ones are counted and logged every "
            "{interval:g} s",
            "txgetty supervisor: {endpoint}: closed {count} more connections in the last {interval:g} s that no "
            "worker could take, {total} in all",
            log=_log,
        )
        self._reading = False
        self._wanted = False
        self._stopped = False
        self._pause: Any = None

    def start(self) -> None:
        """
        Accept whenever a worker is ready.
        """
        self.balancer.watch(self)

    def stop(self) -> None:
        """
        Accept no more (the socket stays open: the caller closes it).
        """
        self._stopped = True
        self.balancer.unwatch(self)
        self._setReading(False)
        self.drops.stop()
        if self._pause is not None and self._pause.active():
            self._pause.cancel()
        self._pause = None

    def setAccepting(self, wanted: bool) -> None:
        """
        @param wanted: a worker is ready (accept) or none is (let
            connections queue).
        """
        self._wanted = wanted
        if self._pause is None:
            self._setReading(wanted and not self._stopped)

    def _setReading(self, reading: bool) -> None:
        """
        Watch the socket, or stop watching it.
        """
        if reading and not self._reading:
            self.reactor.addReader(self)
        elif not reading and self._reading:
            self.reactor.removeReader(self)
        self._reading = reading

    def fileno(self) -> int:
        """
        @return: the listening socket's descriptor.
        """
        return self.socket.fileno()

    def logPrefix(self) -> str:
        """
        @return: how the reactor names this.
        """
        return f"txgetty supervisor {self.label}".strip()

    def doRead(self) -> None:
        """
        Accept the connections waiting (at most L{ACCEPTS_PER_TURN}) and hand
        each over.
        """
        for _ in range(ACCEPTS_PER_TURN):
            try:
                conn, _ = self.socket.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in _TRANSIENT:
                    continue
                self._acceptFailed(e)
                return
            self.accepted += 1
            if not self.balancer.hand(self.listenerId, conn.detach()):
                self.dropped += 1
                self.drops.count(endpoint=self.label, listenerId=self.listenerId)
            if not self._reading:
                return

    def _acceptFailed(self, error: OSError) -> None:
        """
        C{accept()} failed for the listener: pause (out of descriptors) and
        try again.
        """
        why = "out of file descriptors (raise the limit: ulimit -n)" if error.errno in _OUT_OF_FDS else error
        _log.error("txgetty supervisor: cannot accept on {endpoint}: {reason}; pausing {delay:g} s",
                   endpoint=self.label, listenerId=self.listenerId, reason=str(why), error=type(error).__name__,
                   delay=FD_PAUSE)
        self._setReading(False)
        self._pause = self.reactor.callLater(FD_PAUSE, self._resume)

    def _resume(self) -> None:
        """
        The pause after an accept failure is over.
        """
        self._pause = None
        self.setAccepting(self._wanted)

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor dropped the socket (at shutdown).

        @param reason: why.
        """
        self._reading = False
