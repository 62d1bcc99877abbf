"""
Registering a server's services in etcd for as long as it runs.

A L{ServiceRegistration} is an L{IService <twisted.application.service.IService>}: started, it grants a lease and
puts one key per service (L{txgetty.discovery.layout}) under it, then
renews the lease every C{ttl / 3} seconds; stopped, it revokes the lease,
which deletes the keys in the same step.  A server that dies without
stopping stops renewing, and etcd deletes its keys when the lease expires,
C{ttl} seconds later.

When etcd cannot be reached the server keeps serving: the registration logs
one warning, retries with backoff, and registers again (one info line) when
etcd answers.  A lease lost while etcd is up (the process was stalled past
the TTL) is replaced by a new one at once.

The life cycle is the table L{TRANSITIONS} (docs/discovery.md, "States",
says what each transition does), as C{TRANSITIONS.diagram()} draws it::

  STOPPED
    start     -> REGISTERING _doRegister
  REGISTERING
    ok        -> REGISTERED  _doRegistered
    fail      -> DOWN        _doWentDown
    stop      -> STOPPING    _doStop
  REGISTERED
    tick      -> RENEWING    _doRenew
    stop      -> STOPPING    _doStop
  RENEWING
    alive     -> REGISTERED  _doScheduleRenew
    leaseLost -> REGISTERING _doLeaseLost
    fail      -> DOWN        _doWentDown
    stop      -> STOPPING    _doStop
  DOWN
    retry     -> RETRYING    _doRegister
    stop      -> STOPPING    _doStop
  RETRYING
    ok        -> REGISTERED  _doBack
    fail      -> DOWN        scheduleRetry
    stop      -> STOPPING    _doStop
  STOPPING
    stopped   -> STOPPED     _doStopped
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Sequence

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from ..errors import ConfigError
from ..client.reconnect import ReconnectPolicy
from ..statemachine import State, Table
from ._retrying import DEFAULT_RETRY, STOPPED, RetryingService
from .errors import EtcdLeaseNotFoundError
from ..interfaces import IEtcdClient
from .layout import ServerEntry, checkServiceName, serverKeys

__all__ = ["DEFAULT_RETRY", "DEFAULT_TTL", "ServiceRegistration", "TRANSITIONS"]

#: The lease TTL of a registration, in seconds.
DEFAULT_TTL = 10
#: etcd's smallest lease TTL with its default election timeout (1 s): it
#: raises any shorter TTL to this.
MIN_TTL = 2
#: How long a stop waits for etcd to revoke the lease, in seconds.
DEFAULT_STOP_TIMEOUT = 3.0

REGISTERING = State("REGISTERING")
REGISTERED = State("REGISTERED")
RENEWING = State("RENEWING")
DOWN = State("DOWN")
RETRYING = State("RETRYING")
STOPPING = State("STOPPING")


class ServiceRegistration(RetryingService):
    """
    Keeps a server's services registered in etcd while it runs.

    @ivar client: the etcd client.
    @ivar prefix: the registry prefix (C{/txgetty}).
    @ivar services: the service names registered.
    @ivar address: the server's address, C{host:port}.
    @ivar ttl: the lease TTL in seconds.
    @ivar keys: the keys registered, one per service.
    """

    def __init__(
        self,
        client: IEtcdClient,
        prefix: str,
        services: Sequence[str],
        address: str,
        weight: int = 1,
        metadata: Mapping[str, Any] | None = None,
        ttl: int = DEFAULT_TTL,
        clock: IReactorTime | None = None,
        retryPolicy: ReconnectPolicy = DEFAULT_RETRY,
        stopTimeout: float = DEFAULT_STOP_TIMEOUT,
        rng: random.Random | None = None,
    ) -> None:
        """
        @param client: the etcd client (an L{IEtcdClient}).
        @param prefix: the registry prefix, as from L{parseEtcdURL
            <txgetty.discovery.etcd.parseEtcdURL>}.
        @param services: the names of the services the server exposes.
        @param address: the address clients reach it at, C{host:port}.
        @param weight: its weight for weighted balancing (>= 1).
        @param metadata: JSON-able data published with it.
        @param ttl: the lease TTL in whole seconds (>= 2, etcd's minimum);
            a server that dies disappears from the registry this long after.
        @param clock: the reactor's time (default: the global reactor).
        @param retryPolicy: the waits between attempts while etcd is
            unavailable (only its delays are used: it never gives up).
        @param stopTimeout: the longest a stop waits for etcd, in seconds.
        @param rng: the random source of the backoff's jitter.
        @raise ConfigError: a value cannot be registered.
        """
        if isinstance(services, str) or not services:
            raise ConfigError(f"a registration needs a list of service names, got {services!r}")
        self.services = [checkServiceName(s) for s in services]
        if len(set(self.services)) != len(self.services):
            raise ConfigError(f"a service is named twice in {self.services!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < MIN_TTL:
            raise ConfigError(f"the registration TTL must be a whole number of seconds >= {MIN_TTL} (etcd's minimum), got {ttl!r}")
        if isinstance(stopTimeout, bool) or not isinstance(stopTimeout, (int, float)) or not stopTimeout > 0:
            raise ConfigError(f"the registration stopTimeout must be a number of seconds > 0, got {stopTimeout!r}")
        self._entry = ServerEntry(address, weight, dict(metadata or {}), 0)
        self.keys = serverKeys(prefix, self.services, address)
        RetryingService.__init__(self, client, clock, retryPolicy, rng)
        self.prefix = prefix.rstrip("/")
        self.address = address
        self.ttl = ttl
        self._stopTimeout = float(stopTimeout)
        self._lease: int | None = None
        self._registeredWaiters: list[Deferred[None]] = []
        self._stopWaiters: list[Deferred[None]] = []
        self.name = f"registration {address}"  # type: ignore[assignment]  # Service.name: None in Twisted's untyped class body

    def __repr__(self) -> str:
        return f"<ServiceRegistration {self.services} at {self.address} in {self.client.url} {self.state}>"

    @property
    def registered(self) -> bool:
        """
        @return: whether the keys are in etcd as far as this registration
            knows (its last attempt or renewal succeeded).
        """
        return self._state in (REGISTERED, RENEWING)

    @property
    def lease(self) -> int | None:
        """
        @return: the lease the keys are attached to, if any.
        """
        return self._lease

    @property
    def entry(self) -> ServerEntry:
        """
        @return: the entry published (C{started} is set when started).
        """
        return self._entry

    def whenRegistered(self) -> Deferred[None]:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once the keys are registered (at once
            if they are), failing with L{CancelledError} if the service
            stops first.
        """
        if self.registered:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._registeredWaiters.append(d)
        return d

    def startService(self) -> None:
        """
        Register, and keep the registration alive.
        """
        if self._state is not STOPPED:
            raise RuntimeError(f"{self!r} cannot start before its last stop ended")
        Service.startService(self)
        self._entry = ServerEntry(
            self._entry.address, self._entry.weight, self._entry.metadata, int(self._clock.seconds())
        )
        self._fire("start")

    def stopService(self) -> Deferred[None]:
        """
        Deregister: revoke the lease (deleting the keys), waiting at most
        C{stopTimeout} seconds for etcd.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once done; it never fails.
        """
        Service.stopService(self)
        if self._state is STOPPED:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._stopWaiters.append(d)
        self._fire("stop")
        return d

    # -- attempts ------------------------------------------------------------

    async def _register(self) -> None:
        """
        Put the keys under a live lease: the current one if etcd still has
        it, else a new one.

        @raise EtcdError: etcd could not be reached or refused.
        """
        for _ in range(2):
            if self._lease is not None and await self.client.keepAliveOnce(self._lease) == 0:
                self._lease = None
            if self._lease is None:
                self._lease = await self.client.grantLease(self.ttl)
            try:
                for key in self.keys:
                    await self.client.put(key, self._entry.toJSON(), lease=self._lease)
                return
            except EtcdLeaseNotFoundError:
                self._lease = None  # expired between the grant and the put
        raise EtcdLeaseNotFoundError(self.client.url, "/v3/kv/put", None, "the lease vanished twice")

    # -- actions ---------------------------------------------------------------

    def _doRegister(self) -> None:
        """
        Try to register now.
        """
        self._follow(Deferred.fromCoroutine(self._register()), lambda _: "ok")

    def _doRegistered(self) -> None:
        """
        Registered: tell the waiters, schedule the first renewal.
        """
        self.log.info(
            "registered {services} at {address} in etcd {registry} (lease {lease}, TTL {ttl} s)",
            services=self.services, address=self.address, registry=self.client.url, lease=self._lease, ttl=self.ttl,
        )
        self._ready()

    def _ready(self) -> None:
        """
        Reset the backoff, schedule the renewal, then fire the waiters
        (last: one may stop the registration).
        """
        self._failures = 0
        self._doScheduleRenew()
        waiters, self._registeredWaiters = self._registeredWaiters, []
        for d in waiters:
            d.callback(None)

    def _doScheduleRenew(self) -> None:
        """
        Renew the lease C{ttl / 3} seconds from now.
        """
        self._timer = self._clock.callLater(self.ttl / 3, self._fire, "tick")

    def _doRenew(self) -> None:
        """
        Renew the lease once.
        """
        self._timer = None
        assert self._lease is not None
        self._follow(self.client.keepAliveOnce(self._lease), lambda ttl: "alive" if ttl > 0 else "leaseLost")

    def _doLeaseLost(self) -> None:
        """
        etcd no longer has the lease (its keys are gone): register anew.
        """
        self.log.warn(
            "the etcd lease {lease} of {services} at {address} expired (was the process stalled longer "
            "than the TTL of {ttl} s?); registering again with a new lease",
            lease=self._lease, services=self.services, address=self.address, ttl=self.ttl, registry=self.client.url,
        )
        self._lease = None
        self._doRegister()

    def _doWentDown(self) -> None:
        """
        The first failure: log it once, then retry.
        """
        error = self._markDown()
        self.log.warn(
            "could not register {services} at {address} in etcd {registry}: {reason}; the server keeps serving "
            "and registers again when etcd answers",
            services=self.services, address=self.address, registry=self.client.url, reason=str(error),
            error=type(error).__name__,
        )
        self.scheduleRetry()

    def _doBack(self) -> None:
        """
        etcd answers again and the keys are back: log it once.
        """
        self.log.info(
            "etcd {registry} answers again: registered {services} at {address} again after {elapsed:.1f} s",
            registry=self.client.url, services=self.services, address=self.address,
            elapsed=self._downFor(),
        )
        self._ready()

    def _doStop(self) -> None:
        """
        Cancel what runs, then revoke the lease (bounded in time).
        """
        self._cancelPending()
        waiters, self._registeredWaiters = self._registeredWaiters, []
        for d in waiters:
            d.errback(Failure(CancelledError(f"{self!r} stopped before it registered")))
        lease = self._lease
        if lease is None:
            self._fire("stopped")
            return
        d = self.client.revokeLease(lease).addTimeout(self._stopTimeout, self._clock)
        d.addErrback(self._deregisterFailed, lease)
        d.addBoth(lambda _: self._fire("stopped"))

    def _deregisterFailed(self, failure: Failure, lease: int) -> None:
        """
        @param failure: why the lease could not be revoked.
        @param lease: the lease.
        """
        self.log.info(
            "could not deregister {services} at {address} from etcd ({reason}); the keys expire with "
            "lease {lease} within {ttl} s",
            services=self.services, address=self.address, reason=str(failure.value) or type(failure.value).__name__,
            lease=lease, ttl=self.ttl, error=type(failure.value).__name__, registry=self.client.url,
        )

    def _doStopped(self) -> None:
        """
        Deregistered (or given up): fire the stop's waiters.
        """
        self._lease = None
        waiters, self._stopWaiters = self._stopWaiters, []
        for d in waiters:
            d.callback(None)

    #: C{(state, event) -> (next state, action)}.  Events: C{start}/C{stop}
    #: (the service), C{ok}/C{fail} (an attempt to register), C{tick} (time to
    #: renew), C{alive}/C{leaseLost}/C{fail} (a renewal), C{retry} (the backoff
    #: ended), C{stopped} (deregistration done or given up).  Other pairs are
    #: ignored.
    TRANSITIONS = Table([
        (STOPPED, "start", REGISTERING, _doRegister),
        (REGISTERING, "ok", REGISTERED, _doRegistered),
        (REGISTERING, "fail", DOWN, _doWentDown),
        (REGISTERED, "tick", RENEWING, _doRenew),
        (RENEWING, "alive", REGISTERED, _doScheduleRenew),
        (RENEWING, "leaseLost", REGISTERING, _doLeaseLost),
        (RENEWING, "fail", DOWN, _doWentDown),
        (DOWN, "retry", RETRYING, _doRegister),
        (RETRYING, "ok", REGISTERED, _doBack),
        (RETRYING, "fail", DOWN, RetryingService.scheduleRetry),  # the base class's action (shared by both tables)
        (REGISTERING, "stop", STOPPING, _doStop),
        (REGISTERED, "stop", STOPPING, _doStop),
        (RENEWING, "stop", STOPPING, _doStop),
        (DOWN, "stop", STOPPING, _doStop),
        (RETRYING, "stop", STOPPING, _doStop),
        (STOPPING, "stopped", STOPPED, _doStopped),
    ])
    _fire = TRANSITIONS.fire


#: The table of L{ServiceRegistration} (see its C{TRANSITIONS}).
TRANSITIONS = ServiceRegistration.TRANSITIONS
