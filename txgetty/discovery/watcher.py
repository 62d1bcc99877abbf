"""
Following the servers of one service in etcd.

A L{ServiceWatcher} is an L{IService <twisted.application.service.IService>}: started, it reads the keys under
C{PREFIX/services/<Service>/} and watches that prefix from the revision
after the read, so no change is missed; it keeps a dict address ->
L{ServerEntry} and tells its listeners (L{IServerListListener}) which
servers joined and left.  A new server is seen as soon as etcd reports its
key (well within a second).

When etcd cannot be reached the watcher keeps the last known servers, logs
one warning, retries with backoff, and when etcd answers again reads the
keys again (one info line), reporting only the difference from the list it
kept.  While watching it asks etcd for its version every C{probeInterval}
seconds, so an etcd that vanished without closing the connection is noticed
too.

The life cycle is the table L{TRANSITIONS} (docs/discovery.md, "States",
says what each transition does), as C{TRANSITIONS.diagram()} draws it::

  STOPPED
    start  -> SYNCING    _doSync
  SYNCING
    synced -> WATCHING   _doWatching
    fail   -> DOWN       _doWentDown
    stop   -> STOPPED    _doStop
  WATCHING
    lost   -> SYNCING    _doResync
    stop   -> STOPPED    _doStop
  DOWN
    retry  -> RECOVERING _doSync
    stop   -> STOPPED    _doStop
  RECOVERING
    synced -> WATCHING   _doBack
    fail   -> DOWN       scheduleRetry
    stop   -> STOPPED    _doStop
"""

from __future__ import annotations

import random
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import LogLevel
from twisted.python.failure import Failure

from ..errors import ConfigError
from ..client.reconnect import ReconnectPolicy
from ..statemachine import State, Table
from ._retrying import DEFAULT_RETRY, STOPPED, RetryingService
from ._watch import WatchEvent
from .errors import EtcdWatchCanceledError
from ..interfaces import IEtcdClient, IEtcdWatch, IServerListListener
from .layout import ServerEntry, servicePrefix

__all__ = ["DEFAULT_PROBE_INTERVAL", "ServiceWatcher", "TRANSITIONS"]

#: How often a watching watcher checks that etcd still answers, in seconds.
DEFAULT_PROBE_INTERVAL = 5.0

SYNCING = State("SYNCING")
WATCHING = State("WATCHING")
DOWN = State("DOWN")
RECOVERING = State("RECOVERING")


class ServiceWatcher(RetryingService):
    """
    The live list of the servers of one service.

    @ivar client: the etcd client.
    @ivar service: the service name.
    @ivar keyPrefix: the key prefix watched, C{PREFIX/services/<Service>/}.
    """

    def __init__(
        self,
        client: IEtcdClient,
        prefix: str,
        service: str,
        clock: IReactorTime | None = None,
        retryPolicy: ReconnectPolicy = DEFAULT_RETRY,
        probeInterval: float | None = DEFAULT_PROBE_INTERVAL,
        rng: random.Random | None = None,
    ) -> None:
        """
        @param client: the etcd client (an L{IEtcdClient}).
        @param prefix: the registry prefix (C{/txgetty}).
        @param service: the service whose servers to follow.
        @param clock: the reactor's time (default: the global reactor).
        @param retryPolicy: the waits between attempts while etcd is
            unavailable (only its delays are used: it never gives up).
        @param probeInterval: seconds between checks that etcd answers
            while watching; C{None}: rely on the watch connection alone.
        @param rng: the random source of the backoff's jitter.
        @raise ConfigError: a value cannot work.
        """
        if probeInterval is not None and (
            isinstance(probeInterval, bool) or not isinstance(probeInterval, (int, float)) or not probeInterval > 0
        ):
            raise ConfigError(f"probeInterval must be a number of seconds > 0 or None, got {probeInterval!r}")
        self.keyPrefix = servicePrefix(prefix, service)
        RetryingService.__init__(self, client, clock, retryPolicy, rng)
        self.service = service
        self._probeInterval = probeInterval
        self._servers: dict[str, ServerEntry] = {}
        self._listeners: list[IServerListListener] = []
        self._readyWaiters: list[Deferred[dict[str, ServerEntry]]] = []
        self._watch: IEtcdWatch | None = None
        self._probe: Deferred[Any] | None = None
        self.name = f"watcher {service}"  # type: ignore[assignment]  # Service.name: None in Twisted's untyped class body

    def __repr__(self) -> str:
        return f"<ServiceWatcher {self.service} in {self.client.url} {self.state}>"

    @property
    def servers(self) -> dict[str, ServerEntry]:
        """
        @return: the servers known now (the last known ones while etcd is
            unavailable), address -> entry; a copy.
        """
        return dict(self._servers)

    def addListener(self, listener: IServerListListener) -> None:
        """
        @param listener: told of every later change.
        """
        self._listeners.append(listener)

    def removeListener(self, listener: IServerListListener) -> None:
        """
        @param listener: a listener added before; told nothing more.
        """
        self._listeners.remove(listener)

    def whenReady(self) -> Deferred[dict[str, ServerEntry]]:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the servers once the first read
            succeeded (at once if it did), failing with L{CancelledError}
            if the watcher stops first.
        """
        if self._state is WATCHING:
            return succeed(self.servers)
        d: Deferred[dict[str, ServerEntry]] = Deferred()
        self._readyWaiters.append(d)
        return d

    def startService(self) -> None:
        """
        Read the servers and follow their changes.
        """
        Service.startService(self)
        self._fire("start")

    def stopService(self) -> Deferred[None]:
        """
        Stop watching; the servers known stay readable.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once the watch's connection is closed.
        """
        Service.stopService(self)
        watch = self._watch
        self._fire("stop")
        return watch.stop() if watch is not None else succeed(None)

    # -- the server list -----------------------------------------------------

    def _entry(self, key: str, value: bytes) -> ServerEntry | None:
        """
        @param key: a key under the prefix.
        @param value: its value.
        @return: the server it describes, or C{None} (logged) when the value
            is not a server entry.
        """
        try:
            return ServerEntry.fromJSON(value)
        except ValueError as e:
            self.log.warn(
                "ignoring etcd key {key}: its value is not a txgetty server entry ({reason}): {value!r}",
                key=key, reason=str(e), value=value[:200].decode("utf-8", "replace"), service=self.service,
            )
            return None

    def _replace(self, found: dict[str, bytes]) -> None:
        """
        Take a full read as the new list; report the difference.

        @param found: the keys read, key -> value.
        """
        servers = {}
        for key, value in found.items():
            entry = self._entry(key, value)
            if entry is not None:
                servers[key[len(self.keyPrefix):]] = entry
        old, self._servers = self._servers, servers
        added = {a: e for a, e in servers.items() if old.get(a) != e}
        removed = {a: e for a, e in old.items() if servers.get(a) != e}
        self._notify(added, removed)

    def _onEvent(self, event: WatchEvent) -> None:
        """
        Apply one change of a key.

        @param event: the watch event.
        """
        address = event.key[len(self.keyPrefix):]
        old = self._servers.get(address)
        new = self._entry(event.key, event.value) if event.value is not None else None
        if new == old:
            return
        if new is None:
            del self._servers[address]
        else:
            self._servers[address] = new
        self._notify({address: new} if new is not None else {}, {address: old} if old is not None else {})

    def _notify(self, added: dict[str, ServerEntry], removed: dict[str, ServerEntry]) -> None:
        """
        Tell the listeners, if anything changed; what one raises is logged.

        @param added: the servers that joined.
        @param removed: the servers that left.
        """
        if not added and not removed:
            return
        self.log.info(
            "txgetty registry: servers of {service}: +{added} -{removed}",
            service=self.service, added=sorted(added), removed=sorted(removed),
        )
        for listener in list(self._listeners):
            try:
                listener.onServersChanged(dict(added), dict(removed))
            except Exception:
                kind = type(listener)
                self.log.failure("txgetty registry: {listener}.{callback} raised; the servers of {service} "
                                 "changed all the same", level=LogLevel.error, service=self.service,
                                 listener=f"{kind.__module__}.{kind.__qualname__}", callback="onServersChanged")

    # -- attempts ------------------------------------------------------------

    async def _sync(self) -> None:
        """
        Read the servers, then watch from the revision after the read.

        @raise EtcdError: etcd could not be reached or refused.
        """
        revision, found = await self.client.getPrefix(self.keyPrefix)
        self._replace(found)
        self._watch = await self.client.watchPrefix(self.keyPrefix, revision + 1, self._onEvent)

    def _watchEnded(self, failure: Failure, watch: IEtcdWatch) -> None:
        """
        @param failure: why the current watch ended.
        @param watch: that watch.
        """
        if watch is self._watch:
            self._lastError = failure.value
            self._fire("lost")

    def _probeNow(self) -> None:
        """
        Check that etcd answers; a failure counts as a lost watch.
        """
        self._timer = None
        self._probe = self.client.version()

        def answered(_: Any) -> None:
            self._probe = None
            self._scheduleProbe()

        def unanswered(failure: Failure) -> None:
            self._probe = None
            if not failure.check(CancelledError):
                self._lastError = failure.value
                self._fire("lost")

        self._probe.addCallbacks(answered, unanswered)

    def _scheduleProbe(self) -> None:
        """
        Probe etcd in C{probeInterval} seconds (if probing is on).
        """
        if self._probeInterval is not None and self._state is WATCHING:
            self._timer = self._clock.callLater(self._probeInterval, self._probeNow)

    def _cancelAll(self) -> None:
        """
        Cancel the timer, the attempt and the probe in progress.
        """
        self._cancelPending()
        if self._probe is not None:
            self._probe.cancel()
        self._probe = None

    # -- actions ---------------------------------------------------------------

    def _doSync(self) -> None:
        """
        Read and watch now.
        """
        self._timer = None
        self._follow(Deferred.fromCoroutine(self._sync()), lambda _: "synced")

    def _doWatching(self) -> None:
        """
        Watching: reset the backoff, follow the watch's end, start
        probing, fire the waiters.
        """
        self._failures = 0
        watch = self._watch
        assert watch is not None
        self._scheduleProbe()
        watch.whenDone().addErrback(self._watchEnded, watch)
        waiters, self._readyWaiters = self._readyWaiters, []
        for d in waiters:
            d.callback(self.servers)  # last: a waiter may stop the watcher

    def _doResync(self) -> None:
        """
        The watch ended while etcd may still answer: say why, read again.
        """
        self._cancelAll()
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()
        error = self._lastError
        level = self.log.info if isinstance(error, EtcdWatchCanceledError) else self.log.debug
        level("the watch of {service} ended ({reason}); reading the servers again",
              service=self.service, reason=str(error), error=type(error).__name__)
        self._doSync()

    def _doWentDown(self) -> None:
        """
        The first failure: log it once, then retry.
        """
        error = self._markDown()
        self.log.warn(
            "cannot follow the servers of {service} in etcd {registry}: {reason}; keeping the last known list "
            "({count} servers) and reading again when etcd answers",
            service=self.service, registry=self.client.url, reason=str(error), count=len(self._servers),
            error=type(error).__name__,
        )
        self.scheduleRetry()

    def _doBack(self) -> None:
        """
        etcd answers again and the list is current: log it once.
        """
        self.log.info(
            "etcd {registry} answers again: following the {count} servers of {service} after {elapsed:.1f} s",
            registry=self.client.url, count=len(self._servers), service=self.service,
            elapsed=self._downFor(),
        )
        self._doWatching()

    def _doStop(self) -> None:
        """
        Cancel everything; the caller closes the watch.
        """
        self._cancelAll()
        self._watch = None
        waiters, self._readyWaiters = self._readyWaiters, []
        for d in waiters:
            d.errback(Failure(CancelledError(f"{self!r} stopped before it read the servers")))

    #: C{(state, event) -> (next state, action)}.  Events: C{start}/C{stop}
    #: (the service), C{synced}/C{fail} (an attempt to read and watch),
    #: C{lost} (the watch ended or the probe failed), C{retry} (the backoff
    #: ended).  Other pairs are ignored.
    TRANSITIONS = Table([
        (STOPPED, "start", SYNCING, _doSync),
        (SYNCING, "synced", WATCHING, _doWatching),
        (SYNCING, "fail", DOWN, _doWentDown),
        (WATCHING, "lost", SYNCING, _doResync),
        (DOWN, "retry", RECOVERING, _doSync),
        (RECOVERING, "synced", WATCHING, _doBack),
        (RECOVERING, "fail", DOWN, RetryingService.scheduleRetry),  # the base class's action
        (SYNCING, "stop", STOPPED, _doStop),
        (WATCHING, "stop", STOPPED, _doStop),
        (DOWN, "stop", STOPPED, _doStop),
        (RECOVERING, "stop", STOPPED, _doStop),
    ])
    _fire = TRANSITIONS.fire


#: The table of L{ServiceWatcher} (see its C{TRANSITIONS}).
TRANSITIONS = ServiceWatcher.TRANSITIONS
