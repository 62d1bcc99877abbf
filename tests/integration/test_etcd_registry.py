"""
Integration tests of registration and watching against a real etcd:
the exact keys and values, deregistration, a SIGKILLed server's key going
with its lease, a watcher seeing servers join and leave within a second,
and servers and clients living through an etcd restart.  Skipped without
etcd outside CI; failing in CI (C{CI=true}).
"""

from __future__ import annotations

from typing import Any
import json
import os
import sys
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from txgetty.discovery import IServerListListener, ServerEntry, ServiceRegistration, ServiceWatcher
from txgetty.discovery.registration import REGISTERED
from txgetty.discovery.watcher import WATCHING

from ..support import etcd_registrant
from ..support.etcd import clientFor, ownEtcd, sharedEtcd, uniquePrefix, waitFor
from ..support.logs import captureEvents


REGISTRANT = os.path.join(os.path.dirname(os.path.abspath(etcd_registrant.__file__)), "etcd_registrant.py")


@implementer(IServerListListener)
class TimedRecorder:
    """
    Records each change with the time it was told.

    @ivar changes: C{(monotonic time, added, removed)} per call.
    """

    def __init__(self) -> None:
        self.changes: list[tuple[float, dict[str, ServerEntry], dict[str, ServerEntry]]] = []

    def onServersChanged(self, added: Any, removed: Any) -> None:
        self.changes.append((time.monotonic(), added, removed))

    def sawAdded(self, address: str) -> float | None:
        """
        @return: when C{address} was last reported added, if ever.
        """
        times = [t for t, added, _ in self.changes if address in added]
        return times[-1] if times else None

    def sawRemoved(self, address: str) -> float | None:
        """
        @return: when C{address} was last reported removed, if ever.
        """
        times = [t for t, _, removed in self.changes if address in removed]
        return times[-1] if times else None


def warnings(events: list[dict], words: str) -> list[dict]:
    """
    @param events: captured log events.
    @param words: text of the format.
    @return: the warnings whose format contains it.
    """
    return [e for e in events if e.get("log_level") == LogLevel.warn and words in e.get("log_format", "")]


def infos(events: list[dict], words: str) -> list[dict]:
    """
    @param events: captured log events.
    @param words: text of the format.
    @return: the info events whose format contains it.
    """
    return [e for e in events if e.get("log_level") == LogLevel.info and words in e.get("log_format", "")]


class _Registrant(ProcessProtocol):
    """
    The registering child process: fires C{registered} with its lease.
    """

    def __init__(self) -> None:
        self.registered: Deferred[int] = Deferred()
        self.ended: Deferred[Any] = Deferred()
        self.output = b""

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if b"\n" in self.output and not self.registered.called:
            line = self.output.split(b"\n", 1)[0].decode()
            if line.startswith("registered "):
                self.registered.callback(int(line.split()[1]))

    def errReceived(self, data: bytes) -> None:
        self.output += data

    def processEnded(self, reason: Failure) -> None:
        if not self.registered.called:
            self.registered.errback(AssertionError(f"the registrant exited: {self.output.decode(errors='replace')}"))
        self.ended.callback(None)


class RegistryTestCase(TestCase):
    """
    A test with an etcd client and a prefix of its own.
    """

    timeout = 90

    async def setUp(self) -> None:  # type: ignore[override]
        self.etcd = await sharedEtcd()
        self.client = clientFor(self, self.etcd)
        self.prefix = uniquePrefix(self)
        self.events = captureEvents(self)

    def registration(self, address: str, services: list[str] | None = None, **kw: Any) -> ServiceRegistration:
        """
        @return: a started registration, stopped after the test.
        """
        kw.setdefault("ttl", 3)
        reg = ServiceRegistration(self.client, self.prefix, services or ["Echo"], address, clock=reactor, **kw)
        reg.startService()
        self.addCleanup(lambda: reg.stopService() if reg.running else None)
        return reg

    def watcher(self, service: str = "Echo", **kw: Any) -> tuple[ServiceWatcher, TimedRecorder]:
        """
        @return: a started watcher with a recorder, stopped after the test.
        """
        watcher = ServiceWatcher(self.client, self.prefix, service, clock=reactor, **kw)
        recorder = TimedRecorder()
        watcher.addListener(recorder)
        watcher.startService()
        self.addCleanup(lambda: watcher.stopService() if watcher.running else None)
        return watcher, recorder


class RegistrationTests(RegistryTestCase):
    """
    What a registration puts in etcd, and removes.
    """

    async def test_layoutAndValue(self) -> None:
        """
        The keys are C{PREFIX/services/<Service>/<host:port>}, one per
        service, each a JSON object with exactly C{address}, C{weight},
        C{metadata} and C{started} (whole Unix seconds), under a live
        lease.
        """
        before = int(time.time())
        reg = self.registration("127.0.0.1:8091", ["Echo", "Ping"], weight=2, metadata={"zone": "eu-1"})
        await reg.whenRegistered()
        revision, found = await self.client.getPrefix(self.prefix + "/")
        self.assertEqual(sorted(found), [self.prefix + "/services/Echo/127.0.0.1:8091",
                                         self.prefix + "/services/Ping/127.0.0.1:8091"])
        for value in found.values():
            data = json.loads(value)
            self.assertEqual(sorted(data), ["address", "metadata", "started", "weight"])
            self.assertEqual((data["address"], data["weight"], data["metadata"]), ("127.0.0.1:8091", 2, {"zone": "eu-1"}))
            self.assertIsInstance(data["started"], int)
            self.assertTrue(before <= data["started"] <= time.time())
        self.assertGreater(await self.client.leaseTimeToLive(reg.lease), 0)

    async def test_renewedPastTTL(self) -> None:
        """
        A running registration keeps its key well past the lease TTL.
        """
        reg = self.registration("127.0.0.1:8092", ttl=2)
        await reg.whenRegistered()
        key = self.prefix + "/services/Echo/127.0.0.1:8092"
        start = time.monotonic()
        await waitFor(lambda: time.monotonic() - start > 5, "5 s", 10)
        self.assertIsNotNone(await self.client.get(key))
        self.assertEqual(reg.state, REGISTERED.name)

    async def test_deregisterOnStop(self) -> None:
        """
        Stopping deletes the keys at once (no waiting for the TTL) and
        revokes the lease.
        """
        reg = self.registration("127.0.0.1:8093", ttl=30)
        await reg.whenRegistered()
        lease = reg.lease
        await reg.stopService()
        self.assertEqual((await self.client.getPrefix(self.prefix + "/"))[1], {})
        self.assertEqual(await self.client.leaseTimeToLive(lease), -1)

    async def test_killedServerExpires(self) -> None:
        """
        A server SIGKILLed while registered leaves its key until the lease
        expires, then etcd deletes it (TTL 2 s: gone within a few seconds,
        not at once).
        """
        registrant = _Registrant()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        process = reactor.spawnProcess(
            registrant, sys.executable,
            [sys.executable, REGISTRANT, self.etcd.url, self.prefix, "Echo", "127.0.0.1:8094", "2"], env=env,
        )
        self.addCleanup(lambda: process.signalProcess("KILL") if process.pid else None)
        self.addCleanup(lambda: registrant.ended)
        lease = await registrant.registered
        key = self.prefix + "/services/Echo/127.0.0.1:8094"
        self.assertIsNotNone(await self.client.get(key))
        process.signalProcess("KILL")
        await registrant.ended
        killed = time.monotonic()
        self.assertIsNotNone(await self.client.get(key), "the key went with the process, not with the lease")

        async def gone() -> bool:
            return await self.client.get(key) is None

        await waitFor(gone, "the killed server's key to expire", 10)
        self.assertGreater(time.monotonic() - killed, 0.5)
        self.assertEqual(await self.client.leaseTimeToLive(lease), -1)


class WatcherTests(RegistryTestCase):
    """
    A watcher follows servers joining and leaving.
    """

    async def test_joinAndLeaveWithinASecond(self) -> None:
        """
        A server registering is reported added, and deregistering reported
        removed, each within a second of the registry change.
        """
        watcher, recorder = self.watcher()
        self.assertEqual(await watcher.whenReady(), {})
        reg = self.registration("127.0.0.1:8095")
        await reg.whenRegistered()
        registered = time.monotonic()
        await waitFor(lambda: recorder.sawAdded("127.0.0.1:8095"), "the join", 5)
        self.assertLess(recorder.sawAdded("127.0.0.1:8095") - registered, 1.0)
        self.assertEqual(watcher.servers["127.0.0.1:8095"].weight, 1)
        await reg.stopService()
        stopped = time.monotonic()
        await waitFor(lambda: recorder.sawRemoved("127.0.0.1:8095"), "the leave", 5)
        self.assertLess(recorder.sawRemoved("127.0.0.1:8095") - stopped, 1.0)
        self.assertEqual(watcher.servers, {})

    async def test_existingServersRead(self) -> None:
        """
        Servers registered before the watcher starts are in its first list;
        servers of other services are not.
        """
        await self.registration("127.0.0.1:8096").whenRegistered()
        await self.registration("127.0.0.1:8097", ["Other"]).whenRegistered()
        watcher, recorder = self.watcher()
        servers = await watcher.whenReady()
        self.assertEqual(sorted(servers), ["127.0.0.1:8096"])


class RestartTests(TestCase):
    """
    Servers and clients under an etcd that stops and comes back (an etcd of
    their own).
    """

    timeout = 120

    async def setUp(self) -> None:  # type: ignore[override]
        self.etcd = await ownEtcd(self)
        self.client = clientFor(self, self.etcd, timeout=1.0)
        self.events = captureEvents(self)
        self.registrationA = ServiceRegistration(self.client, "/txgetty", ["Echo"], "127.0.0.1:9001", ttl=3, clock=reactor)
        self.watcher = ServiceWatcher(self.client, "/txgetty", "Echo", clock=reactor, probeInterval=1.0)
        self.recorder = TimedRecorder()
        self.watcher.addListener(self.recorder)
        for service in (self.registrationA, self.watcher):
            service.startService()
            self.addCleanup(service.stopService)
        await self.registrationA.whenRegistered()
        await waitFor(lambda: "127.0.0.1:9001" in self.watcher.servers, "the watcher to see A", 5)

    async def outage(self, wipe: bool) -> None:
        """
        Kill etcd, let the clients retry for a while, start it again.

        @param wipe: whether etcd comes back empty (a replaced etcd) rather
            than with its data.
        """
        await self.etcd.kill()
        await waitFor(lambda: warnings(self.events, "cannot follow"), "the watcher's warning", 10)
        await waitFor(lambda: warnings(self.events, "could not register"), "the registration's warning", 10)
        start = time.monotonic()
        await waitFor(lambda: time.monotonic() - start > 3.0, "retries during the outage", 10)
        self.assertEqual(sorted(self.watcher.servers), ["127.0.0.1:9001"], "the watcher kept its list")
        if wipe:
            self.etcd.wipeData()
        await self.etcd.restart()

    async def test_restartKeepsEveryoneGoing(self) -> None:
        """
        etcd SIGKILLed and restarted with its data: the registration and the
        watcher each log one warning and one info line; the key is there
        afterwards, the watcher follows again (a new server is seen) and
        never reported A as gone.
        """
        await self.outage(wipe=False)
        await waitFor(lambda: self.registrationA.state == REGISTERED.name and infos(self.events, "answers again: registered"),
                      "the registration to be back", 15)
        await waitFor(lambda: self.watcher.state == WATCHING.name and infos(self.events, "answers again: following"),
                      "the watcher to be back", 15)
        self.assertIsNotNone(await self.client.get("/txgetty/services/Echo/127.0.0.1:9001"))
        registrationB = ServiceRegistration(self.client, "/txgetty", ["Echo"], "127.0.0.1:9002", ttl=3, clock=reactor)
        registrationB.startService()
        self.addCleanup(registrationB.stopService)
        await waitFor(lambda: self.recorder.sawAdded("127.0.0.1:9002"), "the watcher to see B", 5)
        self.assertIsNone(self.recorder.sawRemoved("127.0.0.1:9001"))
        self.assertEqual(len(warnings(self.events, "cannot follow")), 1)
        self.assertEqual(len(warnings(self.events, "could not register")), 1)
        self.assertEqual(len(infos(self.events, "answers again: registered")), 1)
        self.assertEqual(len(infos(self.events, "answers again: following")), 1)
        self.assertEqual([e for e in self.events if e.get("log_level") == LogLevel.error], [])

    async def test_replacedEtcdGetsRegisteredAgain(self) -> None:
        """
        etcd SIGKILLed and started again empty: the registration puts its
        key again (new lease), and the watcher, following again, lists A.
        """
        await self.outage(wipe=True)

        async def back() -> bool:
            return await self.client.get("/txgetty/services/Echo/127.0.0.1:9001") is not None

        await waitFor(back, "A to register again", 15)
        await waitFor(lambda: self.watcher.state == WATCHING.name and "127.0.0.1:9001" in self.watcher.servers,
                      "the watcher to follow A again", 15)
        self.assertNotEqual(self.registrationA.lease, None)
        self.assertGreater(await self.client.leaseTimeToLive(self.registrationA.lease), 0)
        self.assertEqual([e for e in self.events if e.get("log_level") == LogLevel.error], [])
