"""
Unit tests of L{ServerAnnouncement} (what C{--registry} runs next to the RPC
server) on an in-memory etcd and a clock: one registration per listening
address with every service, the advertised host, the refusal of a wildcard
address, etcd down at start, and the keys deleted on stop.
"""

from __future__ import annotations

import json

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from txgetty.discovery.announce import ServerAnnouncement, advertisedAddress
from txgetty.discovery.testing import MemoryEtcd
from txgetty.errors import ConfigError

from ...support.discovery import levelEvents
from ...support.logs import captureEvents

BOUND = [IPv4Address("TCP", "127.0.0.1", 8091), IPv4Address("TCP", "127.0.0.1", 8092)]


class AdvertisedAddressTests(SynchronousTestCase):
    """
    L{advertisedAddress} turns a bound address into the registry's
    C{host:port}.
    """

    def test_bound(self) -> None:
        """
        The bound host and port; IPv6 in brackets; an advertised host
        replaces the bound one, the port stays.
        """
        self.assertEqual(advertisedAddress(BOUND[0]), "127.0.0.1:8091")
        self.assertEqual(advertisedAddress(IPv6Address("TCP", "::1", 9)), "[::1]:9")
        self.assertEqual(advertisedAddress(BOUND[0], "10.0.0.5"), "10.0.0.5:8091")
        self.assertEqual(advertisedAddress(IPv4Address("TCP", "0.0.0.0", 7), "fe80::1"), "[fe80::1]:7")
        self.assertEqual(advertisedAddress(("127.0.0.1", 8091)), "127.0.0.1:8091")  # a supervisor's

    def test_wildcard(self) -> None:
        """
        A server listening on every address cannot be registered by it: the
        error names --registry-advertise.
        """
        for host in ("0.0.0.0", "::"):
            error = self.assertRaises(ConfigError, advertisedAddress, IPv4Address("TCP", host, 8091))
            self.assertIn("--registry-advertise HOST", str(error))
        self.assertEqual(advertisedAddress(IPv4Address("TCP", "0.0.0.0", 8091), "h.example"), "h.example:8091")

    def test_notTCP(self) -> None:
        """
        A UNIX socket or a UDP port is not registered.
        """
        self.assertIsNone(advertisedAddress(UNIXAddress(b"/tmp/s")))
        self.assertIsNone(advertisedAddress(IPv4Address("UDP", "127.0.0.1", 9)))


class AnnouncementTests(SynchronousTestCase):
    """
    L{ServerAnnouncement} registers every service at each bound address.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.etcd = MemoryEtcd(self.clock)
        self.listening: Deferred = Deferred()

    def announcement(self, **kw) -> ServerAnnouncement:
        return ServerAnnouncement(self.etcd, "/txgetty", lambda: self.listening, lambda: ["Echo", "Calc"],
                                  clock=self.clock, **kw)

    def test_registersEachAddress(self) -> None:
        """
        Once the server listens: one key per service and address, with the
        documented value, each address under a lease of its own; then
        C{registered} and C{whenRegistered}.
        """
        self.clock.advance(1767225600)
        announcement = self.announcement(ttl=5)
        announcement.startService()
        registered = announcement.whenRegistered()
        self.assertFalse(announcement.registered)
        self.assertEqual(self.etcd.keys(), {})
        self.listening.callback(BOUND)
        self.assertTrue(announcement.registered)
        self.assertIsNone(self.successResultOf(registered))
        keys = self.etcd.keys()
        self.assertEqual(sorted(keys), [f"/txgetty/services/{s}/127.0.0.1:{p}"
                                        for s in ("Calc", "Echo") for p in (8091, 8092)])
        self.assertEqual(json.loads(keys["/txgetty/services/Echo/127.0.0.1:8092"]),
                         {"address": "127.0.0.1:8092", "weight": 1, "metadata": {}, "started": 1767225600})
        leases = {self.etcd.leaseOf(k) for k in keys}
        self.assertEqual(len(leases), 2)
        self.successResultOf(announcement.stopService())
        self.assertEqual(self.etcd.keys(), {})
        self.assertFalse(announcement.registered)

    def test_advertise(self) -> None:
        """
        With C{advertise}, a wildcard listener is registered at that host.
        """
        announcement = self.announcement(advertise="10.0.0.5")
        announcement.startService()
        self.listening.callback([IPv4Address("TCP", "0.0.0.0", 8091)])
        self.assertEqual(sorted(self.etcd.keys()), ["/txgetty/services/Calc/10.0.0.5:8091",
                                                    "/txgetty/services/Echo/10.0.0.5:8091"])

    def test_wildcardRefused(self) -> None:
        """
        A wildcard listener without C{advertise}: one error line naming
        --registry-advertise, nothing registered, no exception escapes.
        """
        events = captureEvents(self)
        announcement = self.announcement()
        announcement.startService()
        self.listening.callback([IPv4Address("TCP", "0.0.0.0", 8091)])
        self.assertEqual(self.etcd.keys(), {})
        self.assertEqual(len(levelEvents(events, LogLevel.error, "nothing is registered")), 1)
        self.assertIn("--registry-advertise", levelEvents(events, LogLevel.error, "nothing is registered")[0]["reason"])

    def test_etcdDownAtStart(self) -> None:
        """
        etcd unreachable when the server starts: not registered, one
        warning; registered once etcd answers again.
        """
        events = captureEvents(self)
        self.etcd.goDown()
        announcement = self.announcement()
        announcement.startService()
        registered = announcement.whenRegistered()
        self.listening.callback(BOUND[:1])
        self.clock.advance(20)
        self.assertFalse(announcement.registered)
        self.assertNoResult(registered)
        self.assertEqual(len([e for e in events if e.get("log_level") == LogLevel.warn]), 1)
        self.etcd.comeBack()
        self.clock.advance(6)
        self.assertTrue(announcement.registered)
        self.successResultOf(registered)
        self.assertEqual(len(self.etcd.keys()), 2)

    def test_stopBeforeListening(self) -> None:
        """
        Stopped before the server listens: C{whenRegistered} fails with
        L{CancelledError}, nothing is ever registered.
        """
        announcement = self.announcement()
        announcement.startService()
        registered = announcement.whenRegistered()
        self.successResultOf(announcement.stopService())
        self.failureResultOf(registered, CancelledError)
        self.listening.callback(BOUND)
        self.assertEqual(self.etcd.keys(), {})

    def test_noService(self) -> None:
        """
        A server with no service registers nothing (one warning).
        """
        events = captureEvents(self)
        announcement = ServerAnnouncement(self.etcd, "/txgetty", lambda: succeed(BOUND), lambda: [],
                                          clock=self.clock)
        announcement.startService()
        self.assertEqual(self.etcd.keys(), {})
        self.assertEqual(len(levelEvents(events, LogLevel.warn, "no service")), 1)

    def test_badTTL(self) -> None:
        """
        A TTL below etcd's minimum (2 s) is refused at once, naming
        --registry-ttl.
        """
        error = self.assertRaises(ConfigError, self.announcement, ttl=1)
        self.assertIn("--registry-ttl", str(error))
