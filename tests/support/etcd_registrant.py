"""
A process that registers a service in etcd and runs until killed: the
discovery tests SIGKILL it to check that its key disappears when its lease
expires.

Usage: C{python etcd_registrant.py ETCD_URL PREFIX SERVICE ADDRESS TTL};
prints C{registered LEASE} once the key is in etcd.
"""

from __future__ import annotations

import sys

from twisted.internet.defer import Deferred
from twisted.internet.task import react

from txgetty.discovery import EtcdClient, ServiceRegistration


async def main(reactor: object, url: str, prefix: str, service: str, address: str, ttl: str) -> None:
    """
    Register and wait forever.

    @param reactor: the reactor.
    @param url: the etcd endpoint.
    @param prefix: the registry prefix.
    @param service: the service name.
    @param address: the address to register.
    @param ttl: the lease TTL, in seconds.
    """
    client = EtcdClient(reactor, url)
    registration = ServiceRegistration(client, prefix, [service], address, ttl=int(ttl), clock=reactor)
    registration.startService()
    await registration.whenRegistered()
    print(f"registered {registration.lease}", flush=True)
    await Deferred()


if __name__ == "__main__":
    react(lambda reactor, *args: Deferred.fromCoroutine(main(reactor, *args)), sys.argv[1:])
