"""
Integration tests of L{txgetty.discovery.etcd.EtcdClient} against a real
etcd (Debian's C{etcd-server}, 3.4) on loopback: keys, leases and their
expiry, watches, and the errors a user meets (etcd down, not etcd, no
answer).  Skipped without etcd outside CI; failing in CI (C{CI=true}).
"""

from __future__ import annotations

import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.resource import NoResource
from twisted.web.server import Site

from txgetty.discovery import (
    EtcdClient,
    EtcdLeaseNotFoundError,
    EtcdProtocolError,
    EtcdUnavailableError,
    EtcdWatchCanceledError,
    WatchEvent,
)

from ..support.etcd import clientFor, ownEtcd, sharedEtcd, uniquePrefix, waitFor


class EtcdTestCase(TestCase):
    """
    A test with the shared etcd, a client and a key prefix of its own.
    """

    timeout = 60

    async def setUp(self) -> None:  # type: ignore[override]
        self.etcd = await sharedEtcd()
        self.client = clientFor(self, self.etcd)
        self.prefix = uniquePrefix(self) + "/"


class KeyTests(EtcdTestCase):
    """
    put, get, delete, prefix reads.
    """

    async def test_putGetDelete(self) -> None:
        """
        A value put is read back byte for byte (binary too, under a
        non-ASCII key); deleting it deletes one key, then none.
        """
        key = self.prefix + "clé"
        revision = await self.client.put(key, b"\x00\xff{}")
        self.assertGreater(revision, 1)
        self.assertEqual(await self.client.get(key), b"\x00\xff{}")
        self.assertEqual(await self.client.delete(key), 1)
        self.assertIsNone(await self.client.get(key))
        self.assertEqual(await self.client.delete(key), 0)

    async def test_getPrefix(self) -> None:
        """
        A prefix read returns exactly the keys under the prefix (not a
        sibling that shares its start), at the revision of the last write;
        C{deletePrefix} removes them all.
        """
        await self.client.put(self.prefix + "a", "1")
        await self.client.put(self.prefix + "b/c", "2")
        last = await self.client.put(self.prefix[:-1] + "X", "sibling")
        revision, found = await self.client.getPrefix(self.prefix)
        self.assertEqual(found, {self.prefix + "a": b"1", self.prefix + "b/c": b"2"})
        self.assertGreaterEqual(revision, last)
        self.assertEqual(await self.client.deletePrefix(self.prefix), 2)
        self.assertEqual((await self.client.getPrefix(self.prefix))[1], {})
        await self.client.delete(self.prefix[:-1] + "X")

    async def test_version(self) -> None:
        """
        C{version} reports the etcd server, 3.4 or later.
        """
        version = await self.client.version()
        major, minor = (int(x) for x in version["etcdserver"].split(".")[:2])
        self.assertGreaterEqual((major, minor), (3, 4))


class LeaseTests(EtcdTestCase):
    """
    Leases: grant, keep-alive, expiry, revoke.
    """

    async def test_minimumTTL(self) -> None:
        """
        etcd raises a TTL below its minimum (2 s with the default election
        timeout) to that minimum: a lease granted for 1 s is renewed to 2.
        """
        lease = await self.client.grantLease(1)
        self.assertEqual(await self.client.keepAliveOnce(lease), 2)
        await self.client.revokeLease(lease)

    async def test_keepAliveAndExpiry(self) -> None:
        """
        A key under a 2 s lease outlives it while the lease is renewed, and
        is deleted by etcd within a few seconds once renewals stop.
        """
        lease = await self.client.grantLease(2)
        key = self.prefix + "leased"
        await self.client.put(key, "v", lease=lease)
        start = time.monotonic()
        while time.monotonic() - start < 3.5:
            self.assertEqual(await self.client.keepAliveOnce(lease), 2)
            lastRenewal = time.monotonic()
            await deferLater(reactor, 0.5, lambda: None)
        self.assertEqual(await self.client.get(key), b"v")
        self.assertGreater(await self.client.leaseTimeToLive(lease), 0)

        async def gone() -> bool:
            return await self.client.get(key) is None

        await waitFor(gone, "the leased key to expire", 6.0)
        self.assertGreater(time.monotonic() - lastRenewal, 1.5, "the key went before its TTL")
        self.assertEqual(await self.client.keepAliveOnce(lease), 0)
        self.assertEqual(await self.client.leaseTimeToLive(lease), -1)

    async def test_revoke(self) -> None:
        """
        Revoking a lease deletes its keys at once; a second revoke says the
        lease was gone; a put under it fails with L{EtcdLeaseNotFoundError}.
        """
        lease = await self.client.grantLease(30)
        await self.client.put(self.prefix + "a", "1", lease=lease)
        await self.client.put(self.prefix + "b", "2", lease=lease)
        self.assertIs(await self.client.revokeLease(lease), True)
        self.assertEqual((await self.client.getPrefix(self.prefix))[1], {})
        self.assertIs(await self.client.revokeLease(lease), False)
        error = await self.assertFailure(self.client.put(self.prefix + "c", "3", lease=lease), EtcdLeaseNotFoundError)
        self.assertEqual(error.leaseID, lease)


class WatchTests(EtcdTestCase):
    """
    Watching a prefix.
    """

    async def test_events(self) -> None:
        """
        A watch reports PUT and DELETE of keys under its prefix, in order,
        with their revisions, and nothing outside it.
        """
        events: list[WatchEvent] = []
        watch = await self.client.watchPrefix(self.prefix, 0, events.append)
        self.addCleanup(watch.stop)
        r1 = await self.client.put(self.prefix + "a", "1", lease=None)
        await self.client.put(self.prefix[:-1] + "X", "outside")
        r2 = await self.client.put(self.prefix + "a", "2")
        r3 = (await self.client.delete(self.prefix + "a")) and (await self.client.getPrefix(self.prefix))[0]
        await waitFor(lambda: len(events) >= 3, "three events", 5)
        self.assertEqual(events, [
            WatchEvent("PUT", self.prefix + "a", b"1", r1),
            WatchEvent("PUT", self.prefix + "a", b"2", r2),
            WatchEvent("DELETE", self.prefix + "a", None, r3),
        ])
        await self.client.delete(self.prefix[:-1] + "X")

    async def test_fromRevision(self) -> None:
        """
        A watch from a past revision first replays the changes since, so a
        read at revision R then a watch from R + 1 misses nothing.
        """
        await self.client.put(self.prefix + "a", "1")
        revision, _ = await self.client.getPrefix(self.prefix)
        await self.client.put(self.prefix + "b", "2")
        events: list[WatchEvent] = []
        watch = await self.client.watchPrefix(self.prefix, revision + 1, events.append)
        self.addCleanup(watch.stop)
        await waitFor(lambda: len(events) >= 1, "the replayed event", 5)
        self.assertEqual([(e.type, e.key) for e in events], [("PUT", self.prefix + "b")])

    async def test_stop(self) -> None:
        """
        After C{stop} no event arrives and C{whenDone} fires with C{None}.
        """
        events: list[WatchEvent] = []
        watch = await self.client.watchPrefix(self.prefix, 0, events.append)
        await watch.stop()
        self.assertIsNone(await watch.whenDone())
        await self.client.put(self.prefix + "a", "1")
        probe: list[WatchEvent] = []
        other = await self.client.watchPrefix(self.prefix, 0, probe.append)
        await self.client.put(self.prefix + "a", "2")
        await waitFor(lambda: probe, "a second watch to see the write", 5)
        await other.stop()
        self.assertEqual(events, [])


class CompactionTests(TestCase):
    """
    A watch from a compacted revision (an etcd of its own: compaction is
    global).
    """

    timeout = 60

    async def test_compacted(self) -> None:
        """
        etcd creates the watch, then cancels it: C{whenDone} fails with
        L{EtcdWatchCanceledError} carrying the compact revision.
        """
        etcd = await ownEtcd(self)
        client = clientFor(self, etcd)
        for i in range(3):
            revision = await client.put("/c/k", str(i))
        await client.compact(revision)
        watch = await client.watchPrefix("/c/", 2, lambda e: None)
        error = await self.assertFailure(watch.whenDone(), EtcdWatchCanceledError)
        self.assertEqual(error.compactRevision, revision)


class RestartLeaseTests(TestCase):
    """
    What an etcd restart does to leases (an etcd of its own).
    """

    timeout = 90

    async def test_leaseRenewedByRestart(self) -> None:
        """
        etcd renews the leases it kept when it starts again: a key whose
        lease would have expired while etcd was down is still there after
        the restart, and expires one TTL later.
        """
        etcd = await ownEtcd(self)
        client = clientFor(self, etcd, timeout=2.0)
        lease = await client.grantLease(3)
        await client.put("/r/k", "v", lease=lease)
        await etcd.kill()
        await deferLater(reactor, 4.0, lambda: None)
        await etcd.restart()
        restarted = time.monotonic()
        self.assertEqual(await client.get("/r/k"), b"v")
        self.assertGreater(await client.leaseTimeToLive(lease), 0)

        async def gone() -> bool:
            return await client.get("/r/k") is None

        await waitFor(gone, "the key to expire after the restart", 10)
        self.assertGreater(time.monotonic() - restarted, 1.5)


class UnreachableTests(TestCase):
    """
    What a user sees when the URL does not lead to a working etcd.
    """

    timeout = 60

    async def test_refused(self) -> None:
        """
        Nothing listening: L{EtcdUnavailableError} at once, naming the URL,
        "connection refused" and C{--registry}.
        """
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Factory.forProtocol(Protocol))
        number = port.getHost().port
        await port.stopListening()
        client = EtcdClient(reactor, f"http://127.0.0.1:{number}")
        self.addCleanup(client.close)
        start = time.monotonic()
        error = await self.assertFailure(client.get("k"), EtcdUnavailableError)
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertIn(f"http://127.0.0.1:{number} (connection refused)", str(error))
        self.assertIn("is etcd running there?", str(error))
        self.assertIn("--registry", str(error))

    async def test_notEtcd(self) -> None:
        """
        An HTTP server that is not etcd: L{EtcdProtocolError} asking for
        etcd 3.4 or later.
        """
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(NoResource()))
        self.addCleanup(port.stopListening)
        client = EtcdClient(reactor, f"http://127.0.0.1:{port.getHost().port}")
        self.addCleanup(client.close)
        error = await self.assertFailure(client.put("k", "v"), EtcdProtocolError)
        self.assertIn("HTTP 404", str(error))
        self.assertIn("etcd 3.4 or later", str(error))

    async def test_silent(self) -> None:
        """
        A server that accepts and never answers: the request is given up
        after the client's timeout with L{EtcdUnavailableError}.
        """
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Factory.forProtocol(Protocol))
        self.addCleanup(port.stopListening)
        client = EtcdClient(reactor, f"http://127.0.0.1:{port.getHost().port}", timeout=0.5)
        self.addCleanup(client.close)
        start = time.monotonic()
        error = await self.assertFailure(client.get("k"), EtcdUnavailableError)
        self.assertLess(time.monotonic() - start, 3.0)
        self.assertIn("no answer within 0.5 s", str(error))

    async def test_watchLostWhenEtcdStops(self) -> None:
        """
        A watch ends with L{EtcdUnavailableError} soon after its etcd is
        stopped.
        """
        etcd = await ownEtcd(self)
        client = clientFor(self, etcd)
        watch = await client.watchPrefix("/w/", 0, lambda e: None)
        done: Deferred[None] = watch.whenDone()
        await etcd.kill()
        await self.assertFailure(done, EtcdUnavailableError)
