"""
An in-memory etcd for tests of code that uses service discovery.

L{MemoryEtcd} provides L{IEtcdClient} with etcd's semantics (revisions,
leases that expire on a clock, prefix watches from a revision, the minimum
TTL) and lets a test make etcd unavailable, hold requests in flight, or
cancel watches as a compaction does, all on a
L{Clock <twisted.internet.task.Clock>} and without sockets::

    clock = Clock()
    etcd = MemoryEtcd(clock)
    registration = ServiceRegistration(etcd, "/txgetty", ["Echo"], "127.0.0.1:8091", clock=clock)
    registration.startService()
    etcd.goDown()          # every request fails with EtcdUnavailableError
    clock.advance(10)      # leases keep expiring, as in a network partition
    etcd.comeBack()

Results are delivered synchronously (or on L{release} while L{hold} is on);
watch events are delivered as the write happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from ._watch import WatchEvent
from .errors import EtcdError, EtcdLeaseNotFoundError, EtcdUnavailableError, EtcdWatchCanceledError
from ..interfaces import IEtcdClient, IEtcdWatch

__all__ = ["MemoryEtcd"]


@dataclass
class _Lease:
    """
    A lease of L{MemoryEtcd}.
    """

    ttl: int
    timer: IDelayedCall
    keys: set[str] = field(default_factory=set)


@implementer(IEtcdWatch)
class _MemoryWatch:
    """
    A prefix watch of L{MemoryEtcd}.
    """

    def __init__(self, etcd: MemoryEtcd, prefix: str, onEvent: Callable[[WatchEvent], object]) -> None:
        """
        @param etcd: the store.
        @param prefix: the prefix watched.
        @param onEvent: called with each event.
        """
        self.prefix = prefix
        self.revision = etcd.revision
        self._etcd = etcd
        self._onEvent = onEvent
        self._ended = False
        self._result: Failure | None = None
        self._waiters: list[Deferred[None]] = []

    @property
    def active(self) -> bool:
        """
        @return: whether it still delivers events.
        """
        return not self._ended

    def deliver(self, event: WatchEvent) -> None:
        """
        @param event: a change; delivered if under the prefix.
        """
        if self.active and event.key.startswith(self.prefix):
            self._onEvent(event)

    def end(self, result: Failure | None) -> None:
        """
        @param result: C{None} when stopped, else why it ended.
        """
        if self._ended:
            return
        self._ended = True
        self._result = result
        self._etcd.watchEnded(self)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None) if result is None else d.errback(result)

    def stop(self) -> Deferred[None]:
        """
        @return: a fired L{Deferred <twisted.internet.defer.Deferred>}; no event is delivered after this.
        """
        self.end(None)
        return succeed(None)

    def whenDone(self) -> Deferred[None]:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing when stopped, failing when it ended
            otherwise.
        """
        if not self._ended:
            d: Deferred[None] = Deferred()
            self._waiters.append(d)
            return d
        return succeed(None) if self._result is None else fail(self._result)


@implementer(IEtcdClient)
class MemoryEtcd:
    """
    etcd in memory, with a clock.

    @ivar url: a made-up endpoint, for messages.
    @ivar revision: the store revision (1 when empty, as in etcd).
    @ivar minTTL: the smallest lease TTL granted (etcd's default: 2 s).
    @ivar calls: the name of every operation asked for, in order.
    @ivar available: whether requests succeed.
    """

    def __init__(self, clock: IReactorTime, minTTL: int = 2, url: str = "http://etcd.memory.invalid:2379") -> None:
        """
        @param clock: the clock leases expire on.
        @param minTTL: the smallest TTL granted.
        @param url: the endpoint named in errors.
        """
        self.url = url
        self.revision = 1
        self.minTTL = minTTL
        self.calls: list[str] = []
        self.available = True
        self._clock = clock
        self._keys: dict[str, tuple[bytes, int]] = {}
        self._leases: dict[int, _Lease] = {}
        self._nextLease = 7587
        self._history: list[WatchEvent] = []
        self._compacted = 0
        self._watches: set[_MemoryWatch] = set()
        self._held: list[tuple[Deferred[Any], Callable[[], Any]]] | None = None

    # -- test controls -----------------------------------------------------

    def goDown(self) -> None:
        """
        Become unreachable: every request fails with
        L{EtcdUnavailableError}, every watch ends with it.  Leases keep
        expiring on the clock.
        """
        self.available = False
        for watch in list(self._watches):
            watch.end(Failure(EtcdUnavailableError(self.url, "/v3/watch", "the watch stream was closed")))

    def comeBack(self) -> None:
        """
        Answer again.
        """
        self.available = True

    def hold(self) -> None:
        """
        Keep the next requests in flight until L{release}.
        """
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """
        Answer the requests held, in order, and stop holding.
        """
        held, self._held = self._held or [], None
        for d, operation in held:
            if not d.called:
                self._answer(d, operation)

    @property
    def held(self) -> int:
        """
        @return: how many requests are held and not cancelled.
        """
        return sum(1 for d, _ in self._held or [] if not d.called)

    def compact(self) -> None:
        """
        Compact the history to the current revision and cancel every watch,
        as etcd does to a watch that fell behind a compaction.
        """
        self._compacted = self.revision
        self._history.clear()
        for watch in list(self._watches):
            watch.end(Failure(EtcdWatchCanceledError(self.url, watch.prefix, self._compacted, "")))

    def watchEnded(self, watch: _MemoryWatch) -> None:
        """
        Forget a watch that ended (the watch reports it).

        @param watch: the watch.
        """
        self._watches.discard(watch)

    @property
    def watchCount(self) -> int:
        """
        @return: how many watches are running.
        """
        return len(self._watches)

    def keys(self) -> dict[str, bytes]:
        """
        @return: every key and its value, read without a request.
        """
        return {key: value for key, (value, _) in self._keys.items()}

    def leaseOf(self, key: str) -> int:
        """
        @param key: a key.
        @return: its lease, 0 when none.
        @raise KeyError: no such key.
        """
        return self._keys[key][1]

    # -- plumbing ------------------------------------------------------------

    def _request(self, name: str, operation: Callable[[], Any]) -> Deferred[Any]:
        """
        @param name: the operation, recorded in L{calls}.
        @param operation: computes the answer when etcd gets the request.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} with the answer.
        """
        self.calls.append(name)
        d: Deferred[Any] = Deferred()
        if self._held is not None:
            self._held.append((d, operation))
        else:
            self._answer(d, operation)
        return d

    def _answer(self, d: Deferred[Any], operation: Callable[[], Any]) -> None:
        """
        @param d: the request's L{Deferred <twisted.internet.defer.Deferred>}.
        @param operation: computes the answer.
        """
        if not self.available:
            d.errback(EtcdUnavailableError(self.url, "", "connection refused"))
            return
        try:
            result = operation()
        except EtcdError:
            d.errback()
        else:
            d.callback(result)

    def _write(self, kind: str, key: str, value: bytes | None, lease: int = 0) -> None:
        """
        Apply one change at a new revision and tell the watches.

        @param kind: C{"PUT"} or C{"DELETE"}.
        @param key: the key.
        @param value: the new value (C{None} to delete).
        @param lease: the lease to attach it to.
        """
        self.revision += 1
        old = self._keys.pop(key, None)
        if old is not None and old[1] in self._leases:
            self._leases[old[1]].keys.discard(key)
        if value is not None:
            self._keys[key] = (value, lease)
            if lease:
                self._leases[lease].keys.add(key)
        event = WatchEvent(kind, key, value, self.revision, lease)
        self._history.append(event)
        for watch in list(self._watches):
            watch.deliver(event)

    def _lease(self, leaseID: int | None) -> _Lease:
        """
        @param leaseID: a lease.
        @return: it.
        @raise EtcdLeaseNotFoundError: it does not exist.
        """
        if leaseID not in self._leases:
            raise EtcdLeaseNotFoundError(self.url, "", leaseID)
        return self._leases[leaseID]

    def _expire(self, leaseID: int) -> None:
        """
        @param leaseID: a lease whose TTL ran out: delete its keys.
        """
        lease = self._leases.pop(leaseID)
        for key in sorted(lease.keys):
            self._write("DELETE", key, None)

    @staticmethod
    def _bytes(value: bytes | str) -> bytes:
        """
        @param value: a value as given.
        @return: its bytes.
        """
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)

    # -- IEtcdClient -----------------------------------------------------------

    def grantLease(self, ttl: int) -> Deferred[int]:
        """
        @see: L{IEtcdClient.grantLease}
        """

        def grant() -> int:
            self._nextLease += 1
            granted = max(ttl, self.minTTL)
            timer = self._clock.callLater(granted, self._expire, self._nextLease)
            self._leases[self._nextLease] = _Lease(granted, timer)
            return self._nextLease

        return self._request("grantLease", grant)

    def keepAliveOnce(self, leaseID: int) -> Deferred[int]:
        """
        @see: L{IEtcdClient.keepAliveOnce}
        """

        def renew() -> int:
            lease = self._leases.get(leaseID)
            if lease is None:
                return 0
            lease.timer.reset(lease.ttl)
            return lease.ttl

        return self._request("keepAliveOnce", renew)

    def revokeLease(self, leaseID: int) -> Deferred[bool]:
        """
        @see: L{IEtcdClient.revokeLease}
        """

        def revoke() -> bool:
            if leaseID not in self._leases:
                return False
            self._leases[leaseID].timer.cancel()
            self._expire(leaseID)
            return True

        return self._request("revokeLease", revoke)

    def leaseTimeToLive(self, leaseID: int) -> Deferred[int]:
        """
        @see: L{IEtcdClient.leaseTimeToLive}
        """

        def remaining() -> int:
            lease = self._leases.get(leaseID)
            return -1 if lease is None else max(0, int(lease.timer.getTime() - self._clock.seconds()))

        return self._request("leaseTimeToLive", remaining)

    def put(self, key: str, value: bytes | str, lease: int | None = None) -> Deferred[int]:
        """
        @see: L{IEtcdClient.put}
        """

        def write() -> int:
            if lease:
                self._lease(lease)
            self._write("PUT", key, self._bytes(value), lease or 0)
            return self.revision

        return self._request("put", write)

    def get(self, key: str) -> Deferred[bytes | None]:
        """
        @see: L{IEtcdClient.get}
        """
        return self._request("get", lambda: self._keys.get(key, (None, 0))[0])

    def delete(self, key: str) -> Deferred[int]:
        """
        @see: L{IEtcdClient.delete}
        """

        def remove() -> int:
            if key not in self._keys:
                return 0
            self._write("DELETE", key, None)
            return 1

        return self._request("delete", remove)

    def getPrefix(self, prefix: str) -> Deferred[tuple[int, dict[str, bytes]]]:
        """
        @see: L{IEtcdClient.getPrefix}
        """

        def read() -> tuple[int, dict[str, bytes]]:
            found = {k: v for k, (v, _) in self._keys.items() if k.startswith(prefix)}
            return self.revision, found

        return self._request("getPrefix", read)

    def watchPrefix(self, prefix: str, startRevision: int, onEvent: Callable[[WatchEvent], object]) -> Deferred[Any]:
        """
        @see: L{IEtcdClient.watchPrefix}
        """

        def create() -> _MemoryWatch:
            watch = _MemoryWatch(self, prefix, onEvent)
            self._watches.add(watch)
            if startRevision and startRevision <= self._compacted:
                watch.end(Failure(EtcdWatchCanceledError(self.url, prefix, self._compacted, "")))
                return watch
            for event in list(self._history):
                if startRevision and event.revision >= startRevision:
                    watch.deliver(event)
            return watch

        return self._request("watchPrefix", create)

    def version(self) -> Deferred[dict[str, str]]:
        """
        @see: L{IEtcdClient.version}
        """
        return self._request("version", lambda: {"etcdserver": "3.4.23", "etcdcluster": "3.4.0"})

    def close(self) -> Deferred[None]:
        """
        @see: L{IEtcdClient.close}
        """
        for watch in list(self._watches):
            watch.end(None)
        return succeed(None)
