"""
C{twistd txgetty --registry etcd://...}: checking the registry options and
building the registrations of the RPC server (one per listener address).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.application.service import IService
from twisted.python import usage

from ..discovery.announce import ServerAnnouncement
from ..discovery.etcd import parseEtcdURL
from ..errors import ConfigError


def checkRegistry(options: Any) -> None:
    """
    Check C{--registry}: its URL, an RPC server to register, an address
    clients can reach.

    @param options: the parsed C{twistd txgetty} options.
    @raise usage.UsageError: one cannot work.
    """
    try:
        parseEtcdURL(options["registry"])
    except ConfigError as e:
        raise usage.UsageError(str(e)) from None
    if options["no-rpc"]:
        raise usage.UsageError("--registry registers the RPC server, which --no-rpc turns off: drop one of them")
    for description in options["rpc-listen"]:
        kind = description.partition(":")[0]
        if kind in ("tls", "ssl", "txgetty-tls"):
            raise usage.UsageError(
                f"--registry: the RPC listener {description} is TLS, but a registry entry is a plain HOST:PORT "
                f"that clients following the registry dial without TLS: register plain TCP RPC listeners "
                f"(--rpc-listen tcp:...), or run the TLS one without --registry")
    if options["registry-advertise"] is None:
        for description in options["rpc-listen"]:
            kind, _, rest = description.partition(":")
            interface = dict(p.partition("=")[::2] for p in rest.split(":") if "=" in p).get("interface", "")
            if kind in ("tcp", "tcp6", "tls", "ssl") and interface in ("", "0.0.0.0", "::"):
                raise usage.UsageError(
                    f"--registry: the RPC listener {description} listens on every address, which clients "
                    f"cannot connect to: give the address they reach it at with --registry-advertise HOST, "
                    f"or listen on one address (interface=ADDR)")


def registryService(options: Any, whenListening: Callable[[], Any], services: Callable[[], Any],
                    reactor: Any) -> IService:
    """
    The C{--registry} registrations: one per RPC listener address.  With
    C{--workers N} the supervisor process registers (one registration per
    listener address, not per worker), by this one call::

        registryService(options, lambda: succeed(supervisor.addresses("rpc-listen")),
                        lambda: options["rpc-service-names"], reactor).setServiceParent(top)

    @param options: the parsed L{Options}.
    @param whenListening: returns a C{Deferred} of the bound RPC addresses.
    @param services: returns the names of the services served.
    @param reactor: the reactor.
    @return: the L{ServerAnnouncement} (add it after the RPC server, so
        that it stops, deregistering, first).
    """
    return ServerAnnouncement.fromURL(options["registry"], whenListening, services, reactor=_reactorOf(reactor),
                                      advertise=options["registry-advertise"], ttl=options["registry-ttl"])


def _reactorOf(reactor: Any) -> Any:
    """
    @return: C{reactor}, or the global one if C{None}.
    """
    if reactor is None:
        from twisted.internet import reactor as _reactor

        return _reactor
    return reactor
