"""
Registering a server at every address it listens on: what C{twistd -n
txgetty --registry etcd://...} runs next to its RPC server.

A L{ServerAnnouncement} waits until the server listens, then runs one
L{ServiceRegistration <txgetty.discovery.registration.ServiceRegistration>}
per bound address (all its services under one lease each).  Stopped, it
revokes them, which deletes the keys.  It only needs two callables of the
server (its bound addresses, its service names), so a worker supervisor,
which knows the listening addresses but serves no call itself, registers
the same way (one registration per listener address, not per worker)::

    announcement = ServerAnnouncement.fromURL(
        "etcd://127.0.0.1:2379", rpc.whenListening, lambda: list(rpc.registry.names()),
        clock=reactor)
    announcement.setServiceParent(application)
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable, Mapping, Sequence

from twisted.application.service import MultiService
from twisted.internet.defer import CancelledError, Deferred, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..errors import ConfigError
from ..interfaces import IEtcdClient
from ..transports.addresses import formatAddress
from .etcd import EtcdClient, parseEtcdURL
from .registration import DEFAULT_TTL, MIN_TTL, ServiceRegistration

_log = Logger()


def advertisedAddress(address: Any, advertise: str | None = None) -> str | None:
    """
    @param address: a bound address (C{IPv4Address}, C{IPv6Address}, a
        C{(host, port)} pair as a worker supervisor gives, or another kind,
        which cannot be registered).
    @param advertise: the host clients reach the server at, instead of the
        bound one.
    @return: C{host:port} (C{[host]:port} for IPv6) for the registry, or
        C{None} for an address that is not TCP (a UNIX socket).
    @raise ConfigError: the server listens on every address (C{0.0.0.0},
        C{::}) and no C{advertise} host is given.
    """
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
    else:
        host, port = getattr(address, "host", None), getattr(address, "port", None)
    if not isinstance(host, str) or not isinstance(port, int) or getattr(address, "type", "TCP") != "TCP":
        return None
    if advertise is None and host in ("", "0.0.0.0", "::"):
        raise ConfigError(
            f"the RPC server listens on every address ({host or '0.0.0.0'}:{port}), which clients cannot "
            f"connect to: give the address they reach it at with --registry-advertise HOST "
            f"(advertise=), or listen on one address (interface=)"
        )
    host = advertise if advertise is not None else host
    try:
        isIPv6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        isIPv6 = False
    return f"[{host}]:{port}" if isIPv6 else f"{host}:{port}"


class ServerAnnouncement(MultiService):
    """
    The registrations of one server, one per address it listens on.

    @ivar etcd: the etcd client.
    @ivar prefix: the registry prefix.
    @ivar registrations: the L{ServiceRegistration}s, once listening.
    """

    def __init__(
        self,
        etcd: IEtcdClient,
        prefix: str,
        whenListening: Callable[[], Deferred[Sequence[Any]]],
        services: Callable[[], Sequence[str]],
        advertise: str | None = None,
        ttl: int = DEFAULT_TTL,
        weight: int = 1,
        metadata: Mapping[str, Any] | None = None,
        clock: IReactorTime | None = None,
        ownsEtcd: bool = False,
    ) -> None:
        """
        @param etcd: the etcd client.
        @param prefix: the registry prefix (C{/txgetty}).
        @param whenListening: returns a L{Deferred} of the bound addresses
            (C{RpcServer.whenListening}).
        @param services: returns the names of the services served, asked
            once listening.
        @param advertise: the host clients reach the server at (needed for
            a server listening on every address).
        @param ttl: the lease TTL, whole seconds >= 2.
        @param weight: the weight published.
        @param metadata: the metadata published.
        @param clock: the reactor's time.
        @param ownsEtcd: close C{etcd} when stopped.
        """
        super().__init__()
        self.etcd = etcd
        self.prefix = prefix
        self.registrations: list[ServiceRegistration] = []
        self._whenListening = whenListening
        self._services = services
        self._settings = dict(weight=weight, metadata=metadata, ttl=ttl, clock=clock)
        self._advertise = advertise
        self._ownsEtcd = ownsEtcd
        self._listening: Deferred[Any] | None = None
        self._waiters: list[Deferred[None]] = []
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < MIN_TTL:
            raise ConfigError(f"the registration TTL must be a whole number of seconds >= {MIN_TTL} (etcd's "
                              f"minimum), got {ttl!r} (--registry-ttl)")

    @classmethod
    def fromURL(cls, url: str, whenListening: Callable[[], Deferred[Sequence[Any]]],
                services: Callable[[], Sequence[str]], *, reactor: Any, **kw: Any) -> ServerAnnouncement:
        """
        @param url: the registry, C{etcd://HOST[:PORT][/PREFIX]}.
        @param whenListening: as for the constructor.
        @param services: as for the constructor.
        @param reactor: the reactor (the clock too).
        @param kw: the constructor's other arguments.
        @return: an announcement with an etcd client of its own.
        @raise ConfigError: the URL or a setting is wrong.
        """
        endpoint, prefix = parseEtcdURL(url)
        return cls(EtcdClient(reactor, endpoint), prefix, whenListening, services, clock=reactor, ownsEtcd=True, **kw)

    @property
    def registered(self) -> bool:
        """
        @return: whether every address is registered (as far as etcd last
            answered); C{False} before the server listens.
        """
        return bool(self.registrations) and all(r.registered for r in self.registrations)

    def whenRegistered(self) -> Deferred[None]:
        """
        @return: a L{Deferred} firing once every address is registered;
            failing with L{CancelledError} if stopped first.
        """
        if self.registered:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        return d

    def startService(self) -> None:
        """
        Register once the server listens.
        """
        super().startService()
        self._listening = self._whenListening()
        self._listening.addCallback(self._listened).addErrback(self._failed)

    def _listened(self, addresses: Sequence[Any]) -> None:
        """
        Start a registration per bound address.
        """
        self._listening = None
        names = sorted(self._services())
        if not names:
            _log.warn("txgetty registry: the server exposes no service: nothing is registered in {registry}",
                      registry=self.etcd.url)
            return
        for address in addresses:
            advertised = advertisedAddress(address, self._advertise)
            if advertised is None:
                _log.info("txgetty registry: {address} is not a TCP address: not registered",
                          address=formatAddress(address), registry=self.etcd.url)
                continue
            registration = ServiceRegistration(self.etcd, self.prefix, names, advertised, **self._settings)  # type: ignore[arg-type]
            self.registrations.append(registration)
            registration.setServiceParent(self)
        waits = [r.whenRegistered() for r in self.registrations]
        gatherResults(waits, consumeErrors=True).addCallbacks(self._allRegistered, lambda _: None)

    def _allRegistered(self, _: Any) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def _failed(self, failure: Failure) -> None:
        """
        The server did not listen (reported by the server), was stopped
        first, or an address cannot be registered: say so once.
        """
        self._listening = None
        if failure.check(ConfigError):
            _log.error("txgetty registry: nothing is registered in {registry}: {reason}", registry=self.etcd.url,
                       reason=failure.getErrorMessage(), error=type(failure.value).__name__)
        elif not failure.check(CancelledError):
            _log.info("txgetty registry: nothing is registered in {registry}: the server did not listen ({reason})",
                      registry=self.etcd.url, reason=failure.getErrorMessage(), error=type(failure.value).__name__)

    def stopService(self) -> Deferred[None]:
        """
        Deregister every address (revoking their leases deletes the keys).

        @return: a L{Deferred} firing once done; it never fails.
        """
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.errback(CancelledError("the registry announcement was stopped"))
        await super().stopService()
        for registration in self.registrations:
            registration.disownServiceParent()
        self.registrations = []
        if self._ownsEtcd:
            await self.etcd.close()

