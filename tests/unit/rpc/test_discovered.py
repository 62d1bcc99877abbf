"""
Unit tests of L{RpcClient.fromRegistry} on an in-memory etcd and a memory
reactor: the client's servers follow the registry (joins balanced onto,
leaves dropped, a changed entry kept), and etcd going down keeps the list.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty.discovery import ServerEntry, serverKey
from txgetty.discovery.testing import MemoryEtcd
from txgetty.errors import ConfigError
from txgetty.interfaces import IServerListListener
from txgetty.rpc import RpcClient


class FromRegistryTests(SynchronousTestCase):
    """
    A client built from the registry.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.etcd = MemoryEtcd(self.reactor)
        self.client = RpcClient.fromRegistry("etcd://127.0.0.1:2379/fleet", "Echo", reactor=self.reactor,
                                             etcd=self.etcd)

    def put(self, address: str, service: str = "Echo") -> None:
        self.etcd.put(serverKey("/fleet", service, address), ServerEntry(address).toJSON())

    def test_follows(self) -> None:
        """
        Servers registered before the start are the client's; one that
        registers later joins, one whose key is deleted leaves; servers of
        other services are not taken.
        """
        verifyObject(IServerListListener, self.client.registry)
        self.put("10.0.0.1:8091")
        self.put("10.0.0.9:8091", "Other")
        self.client.startService()
        self.assertEqual(sorted(self.successResultOf(self.client.registry.whenReady())), ["10.0.0.1:8091"])
        self.assertEqual(self.client.addresses, ["10.0.0.1:8091"])
        self.put("10.0.0.2:8091")
        self.assertEqual(self.client.addresses, ["10.0.0.1:8091", "10.0.0.2:8091"])
        self.etcd.delete(serverKey("/fleet", "Echo", "10.0.0.1:8091"))
        self.assertEqual(self.client.addresses, ["10.0.0.2:8091"])
        self.put("10.0.0.2:8091")  # re-registered (a new entry): stays
        self.assertEqual(self.client.addresses, ["10.0.0.2:8091"])

    def test_etcdDownKeepsList(self) -> None:
        """
        etcd unreachable: the client keeps the servers it knew.
        """
        self.put("10.0.0.1:8091")
        self.client.startService()
        self.etcd.goDown()
        self.reactor.advance(30)
        self.assertEqual(self.client.addresses, ["10.0.0.1:8091"])
        self.assertEqual(self.client.registry.servers.keys(), {"10.0.0.1:8091"})

    def test_removedServerKeepsNoCall(self) -> None:
        """
        L{RpcClient.removeServer} takes the address out of the balancing at
        once; L{RpcClient.addServer} of it again puts it back.
        """
        client = RpcClient(["10.0.0.1:8091", "10.0.0.2:8091"], reactor=self.reactor)
        client.removeServer("10.0.0.1:8091")
        self.assertEqual(client.addresses, ["10.0.0.2:8091"])
        client.addServer("10.0.0.1:8091")
        self.assertEqual(client.addresses, ["10.0.0.2:8091", "10.0.0.1:8091"])

    def test_badArguments(self) -> None:
        """
        A wrong URL or service name is a L{ConfigError} at once.
        """
        self.assertRaises(ConfigError, RpcClient.fromRegistry, "http://h", "Echo", reactor=self.reactor)
        self.assertRaises(ConfigError, RpcClient.fromRegistry, "etcd://h", "a/b", reactor=self.reactor)
