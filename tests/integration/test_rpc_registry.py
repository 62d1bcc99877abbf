"""
C{--registry} and L{RpcClient.fromRegistry} against a real etcd:
C{twistd -n txgetty --registry ...} registers and deregisters, a SIGKILLed
one's key goes with its lease, a client's servers follow the registry
during a call loop, servers and clients live through an etcd restart, and
C{txgetty call etcd://...}.  Skipped without etcd outside CI; failing in CI.
"""

from __future__ import annotations

import json
import time

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import LogLevel
from twisted.trial.unittest import TestCase

from txgetty.rpc import RpcClient

from ..support.discovery import levelEvents
from ..support.etcd import ownEtcd, sharedEtcd, uniquePrefix, waitFor
from ..support.logs import captureEvents
from ..support.processes import runScript, runTxgetty
from ..support.registry import CallLoop, TapProcess, address, etcdClient, registeredServer


def registeredAddresses(values: dict[str, bytes]) -> list[str]:
    """
    @param values: keys to values read from etcd.
    @return: the addresses in the values.
    """
    return sorted(json.loads(v)["address"] for v in values.values())


class RegistryCase(TestCase):
    """
    A test with the shared etcd and a registry URL of its own.
    """

    timeout = 120

    async def setUp(self) -> None:  # type: ignore[override]
        self.etcd = await sharedEtcd()
        self.prefix = uniquePrefix(self)
        self.url = self.etcd.registryURL + self.prefix
        self.etcdClient = etcdClient(self, self.url)

    async def servers(self, service: str = "Echo") -> dict[str, bytes]:
        """
        @return: the keys under the service's prefix, with their values.
        """
        return (await self.etcdClient.getPrefix(f"{self.prefix}/services/{service}/"))[1]

    def client(self, **kw) -> RpcClient:
        """
        @return: a started client of the registry's Echo servers, stopped
            after the test.
        """
        client = RpcClient.fromRegistry(self.url, "Echo", reactor=reactor, **kw)
        client.startService()
        self.addCleanup(client.stopService)
        return client


class TapTests(RegistryCase):
    """
    C{twistd -n txgetty --registry etcd://HOST:PORT/PREFIX} as a real
    process.
    """

    def tap(self, *args: str) -> TapProcess:
        return TapProcess(self, "--listen", "tcp:0:interface=127.0.0.1", "--rpc-listen", "tcp:0:interface=127.0.0.1",
                          "--registry", self.url, *args)

    async def test_registerAndDeregister(self) -> None:
        """
        The server registers each service it exposes at its bound address,
        the value as documented; SIGTERM (a graceful stop) deletes the keys
        at once, long before the TTL.
        """
        before = int(time.time())
        tap = self.tap("--registry-ttl", "30")
        await tap.waitForOutput("registered ['Echo', 'Health', 'Ping', 'Status']")
        found = await self.servers()
        self.assertEqual(len(found), 1, found)
        key, value = next(iter(found.items()))
        data = json.loads(value)
        self.assertEqual(sorted(data), ["address", "metadata", "started", "weight"])
        self.assertEqual(key, f"{self.prefix}/services/Echo/{data['address']}")
        self.assertTrue(data["address"].startswith("127.0.0.1:"))
        self.assertEqual((data["weight"], data["metadata"]), (1, {}))
        self.assertTrue(before <= data["started"] <= time.time())
        self.assertEqual(registeredAddresses(await self.servers("Ping")), [data["address"]])
        tap.signal("TERM")
        stopped = time.monotonic()
        await tap.ended
        self.assertEqual((await self.etcdClient.getPrefix(self.prefix + "/"))[1], {})
        self.assertLess(time.monotonic() - stopped, 10)

    async def test_killedServerExpires(self) -> None:
        """
        A SIGKILLed server's keys stay until its lease expires (TTL 2 s),
        then go; a client following the registry drops the server.
        """
        tap = self.tap("--registry-ttl", "2")
        await tap.waitForOutput("registered ['Echo'")
        [server] = registeredAddresses(await self.servers())
        client = self.client()
        await client.registry.whenReady()
        self.assertEqual(client.addresses, [server])
        self.assertEqual(await client.call("Echo.echo", "hi"), "hi")
        tap.signal("KILL")
        await tap.ended
        killed = time.monotonic()
        self.assertEqual(registeredAddresses(await self.servers()), [server])

        async def gone() -> bool:
            return not await self.servers()

        await waitFor(gone, "the killed server's key to expire", 15)
        self.assertGreater(time.monotonic() - killed, 0.5)
        await waitFor(lambda: client.addresses == [], "the client to drop the server", 5)

    async def test_wildcardNeedsAdvertise(self) -> None:
        """
        An RPC listener on every address without --registry-advertise stops
        twistd at once with a line naming the option.
        """
        out, err, code = await runScript("twistd", "-n", "--pidfile=", "txgetty", "--rpc-listen", "tcp:0",
                                         "--registry", self.url)
        self.assertNotEqual(code, 0)
        self.assertIn("--registry-advertise HOST", out + err)


class FollowTests(RegistryCase):
    """
    A client from the registry follows servers joining and leaving.
    """

    async def test_joinAndLeaveDuringCalls(self) -> None:
        """
        During a loop of calls: a new server is balanced onto within a
        second of registering; a server stopping (deregistered, then
        drained) leaves the balancing; no call fails (idempotent calls
        with failover="retry", as docs/fleet.md says).
        """
        first, firstAnnouncement = await registeredServer(self, self.url)
        client = self.client(failover="retry")
        await client.registry.whenReady()
        loop = CallLoop(client, idempotent=True, timeout=5)
        self.addCleanup(loop.stop)
        await loop.moreCalls(20)
        self.assertEqual(client.addresses, [address(first)])
        second, _ = await registeredServer(self, self.url)
        registered = time.monotonic()
        await waitFor(lambda: address(second) in client.addresses, "the new server to join", 5)
        self.assertLess(time.monotonic() - registered, 1.0)
        await waitFor(lambda: second.calls > 0, "calls on the new server", 5)
        self.assertLess(time.monotonic() - registered, 2.0)
        await firstAnnouncement.stopService()
        await first.stopService()
        await waitFor(lambda: client.addresses == [address(second)], "the stopped server to leave", 5)
        calls = second.calls
        await loop.moreCalls(20)
        self.assertGreaterEqual(second.calls - calls, 20)
        await loop.stop()
        self.assertEqual(loop.failed, [])

    async def test_callsWaitForAServer(self) -> None:
        """
        A call made while no server is registered waits (its timeout runs)
        and is sent when one registers.
        """
        client = self.client()
        self.assertEqual(await client.registry.whenReady(), {})
        call = client.call("Echo.echo", "late", timeout=20)
        await deferLater(reactor, 0.3, lambda: None)
        self.assertFalse(call.called)
        await registeredServer(self, self.url)
        self.assertEqual(await call, "late")


class EtcdRestartTests(TestCase):
    """
    etcd stopped and started again under running servers and clients.
    """

    timeout = 120

    async def test_restartUnderServersAndClients(self) -> None:
        """
        While etcd is down, clients keep their servers and keep calling
        (one warning), servers keep serving; once it is back the servers
        register again and a server that joins then is balanced onto.
        """
        events = captureEvents(self)
        etcd = await ownEtcd(self)
        url = etcd.registryURL + "/restart"
        server, announcement = await registeredServer(self, url, ttl=2)
        client = RpcClient.fromRegistry(url, "Echo", reactor=reactor)
        client.startService()
        self.addCleanup(client.stopService)
        await client.registry.whenReady()
        loop = CallLoop(client, timeout=5)
        self.addCleanup(loop.stop)
        await loop.moreCalls(10)
        await etcd.stop()
        await waitFor(lambda: not announcement.registered, "the registration to notice", 15)
        await loop.moreCalls(50)
        self.assertEqual(client.addresses, [address(server)])
        await etcd.restart()
        await waitFor(lambda: announcement.registered, "the server to register again", 20)
        second, _ = await registeredServer(self, url, ttl=2)
        await waitFor(lambda: address(second) in client.addresses, "a new server to join after the restart", 20)
        await waitFor(lambda: second.calls > 0, "calls on the new server", 5)
        await loop.stop()
        self.assertEqual(loop.failed, [])
        self.assertTrue(levelEvents(events, LogLevel.warn, ""), "no warning that etcd went down")


class CallCommandTests(RegistryCase):
    """
    C{txgetty call etcd://HOST:PORT/PREFIX Service.method ARGS}.
    """

    async def test_callThroughRegistry(self) -> None:
        """
        The call goes to a registered server and prints its result.
        """
        await registeredServer(self, self.url)
        out, err, code = await runTxgetty("call", self.url, "Echo.echo", '"via etcd"')
        self.assertEqual((out, code), ('"via etcd"\n', 0), err)

    async def test_noServer(self) -> None:
        """
        No server registered for the service: exit 1, one line saying so
        and what to check.
        """
        out, err, code = await runTxgetty("call", self.url, "Echo.echo", '"x"')
        self.assertEqual(code, 1)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("no server of Echo is registered", err)
        self.assertIn(f"--registry {self.url}", err)

    async def test_etcdRefused(self) -> None:
        """
        Nothing listening at the etcd address: exit 1, one line saying
        etcd is unavailable there and to check the registry URL.
        """
        out, err, code = await runTxgetty("call", "etcd://127.0.0.1:1", "Echo.echo", '"x"')
        self.assertEqual(code, 1)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("etcd is unavailable at http://127.0.0.1:1 (connection refused)", err)
