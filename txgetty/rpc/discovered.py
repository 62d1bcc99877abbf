"""
An L{RpcClient <txgetty.rpc.client.RpcClient>} that follows the servers
registered in etcd (L{RpcClient.fromRegistry
<txgetty.rpc.client.RpcClient.fromRegistry>}): a L{ServiceWatcher
<txgetty.discovery.watcher.ServiceWatcher>} reads them and watches their
prefix, and L{RegistryFollower} turns each change into C{addServer} /
C{removeServer} calls on the client.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from zope.interface import implementer

from ..discovery.etcd import EtcdClient, parseEtcdURL
from ..discovery.layout import ServerEntry, checkServiceName
from ..discovery.watcher import ServiceWatcher
from ..interfaces import IEtcdClient, IServerListListener


@implementer(IServerListListener)
class RegistryFollower(MultiService):
    """
    Keeps a client's servers equal to those registered for a service; a
    service, child of the client.

    @ivar service: the service followed.
    @ivar watcher: its L{ServiceWatcher}.
    @ivar etcd: the etcd client.
    """

    def __init__(self, client: Any, etcd: IEtcdClient, prefix: str, service: str, ownsEtcd: bool) -> None:
        """
        @param client: the L{RpcClient} (its C{addServer}, C{removeServer}
            and C{reactor} are used).
        @param etcd: the etcd client.
        @param prefix: the registry prefix.
        @param service: the service name.
        @param ownsEtcd: close C{etcd} when stopped.
        """
        super().__init__()
        self._client = client
        self.etcd = etcd
        self.service = checkServiceName(service)
        self._ownsEtcd = ownsEtcd
        self.watcher = ServiceWatcher(etcd, prefix, self.service, clock=client.reactor)
        self.watcher.addListener(self)
        self.watcher.setServiceParent(self)

    @classmethod
    def fromURL(cls, client: Any, url: str, service: str, etcd: IEtcdClient | None = None) -> RegistryFollower:
        """
        @param client: the L{RpcClient}.
        @param url: C{etcd://HOST[:PORT][/PREFIX]}.
        @param service: the service name.
        @param etcd: an etcd client to use (not closed when stopped), or
            C{None} for a new one on the URL's endpoint.
        @return: the follower.
        @raise ConfigError: the URL or the service name is wrong.
        """
        endpoint, prefix = parseEtcdURL(url)
        owns = etcd is None
        return cls(client, EtcdClient(client.reactor, endpoint) if etcd is None else etcd, prefix, service, owns)

    @property
    def servers(self) -> dict[str, ServerEntry]:
        """
        @return: the servers registered as last known, address -> entry.
        """
        return self.watcher.servers

    def whenReady(self) -> Deferred[dict[str, ServerEntry]]:
        """
        @return: the watcher's L{whenReady <ServiceWatcher.whenReady>}: the
            servers once etcd answered the first read.
        """
        return self.watcher.whenReady()

    def onServersChanged(self, added: Any, removed: Any) -> None:
        """
        Servers that left get no new call; servers that joined are balanced
        onto (one whose entry changed is in both: it stays).

        @param added: address -> entry of servers that joined.
        @param removed: address -> entry of servers that left.
        """
        for address in removed:
            if address not in added:
                self._client.removeServer(address)
        for address in added:
            self._client.addServer(address)

    def stopService(self) -> Deferred[None]:
        """
        Stop watching; close the etcd client if it is this follower's own.

        @return: a L{Deferred} firing once done.
        """
        d: Deferred[Any] = Deferred.fromCoroutine(self._stop())
        return d

    async def _stop(self) -> None:
        await super().stopService()
        if self._ownsEtcd:
            await self.etcd.close()
