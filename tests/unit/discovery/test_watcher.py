"""
Unit tests of L{ServiceWatcher <txgetty.discovery.watcher.ServiceWatcher>}
on an in-memory etcd and a clock: every promise of its table, outages
included.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txgetty.discovery import (
    IServerListListener,
    ServerEntry,
    ServiceRegistration,
    ServiceWatcher,
    watcher as W,
)
from txgetty.discovery.testing import MemoryEtcd
from txgetty.errors import ConfigError

from ...support.discovery import ADDRESS, Recorder, levelEvents
from ...support.logs import captureEvents


class WatcherTestCase(SynchronousTestCase):
    """
    A watcher of C{Echo} on a memory etcd.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.etcd = MemoryEtcd(self.clock)
        self.events = captureEvents(self)
        self.recorder = Recorder()

    def put(self, address: str, weight: int = 1, service: str = "Echo") -> None:
        """
        Register a server by hand.
        """
        entry = ServerEntry(address, weight, {}, 100)
        self.successResultOf(self.etcd.put(f"/txgetty/services/{service}/{address}", entry.toJSON()))

    def watcher(self, **kw: Any) -> ServiceWatcher:
        """
        @return: a started watcher with the recorder as listener.
        """
        watcher = ServiceWatcher(self.etcd, "/txgetty", "Echo", clock=self.clock, **kw)
        watcher.addListener(self.recorder)
        watcher.startService()
        return watcher


class WatcherTests(WatcherTestCase):
    """
    Reading and following the servers.
    """

    def test_initialRead(self) -> None:
        """
        The servers registered before the start are read, reported as added
        and given to C{whenReady}; other services' keys are not (not even
        C{EchoV2}, which shares the name's start).
        """
        self.put("10.0.0.1:1")
        self.put("10.0.0.2:1", service="EchoV2")
        watcher = self.watcher()
        servers = self.successResultOf(watcher.whenReady())
        self.assertEqual(sorted(servers), ["10.0.0.1:1"])
        self.assertEqual(servers["10.0.0.1:1"], ServerEntry("10.0.0.1:1", 1, {}, 100))
        self.assertEqual(self.recorder.last(), (["10.0.0.1:1"], []))
        self.assertEqual(watcher.state, W.WATCHING.name)
        self.assertTrue(verifyObject(IServerListListener, self.recorder))

    def test_joinLeaveChange(self) -> None:
        """
        A new key is a join, a deleted key a leave, a changed value both (old
        entry removed, new added); an identical write is no change.
        """
        watcher = self.watcher()
        self.put("10.0.0.1:1")
        self.assertEqual(self.recorder.last(), (["10.0.0.1:1"], []))
        self.put("10.0.0.1:1", weight=5)
        added, removed = self.recorder.changes[-1]
        self.assertEqual((added["10.0.0.1:1"].weight, removed["10.0.0.1:1"].weight), (5, 1))
        count = len(self.recorder.changes)
        self.put("10.0.0.1:1", weight=5)
        self.assertEqual(len(self.recorder.changes), count)
        self.successResultOf(self.etcd.delete("/txgetty/services/Echo/10.0.0.1:1"))
        self.assertEqual(self.recorder.last(), ([], ["10.0.0.1:1"]))
        self.assertEqual(watcher.servers, {})

    def test_badValueIgnored(self) -> None:
        """
        A key whose value is not a server entry is ignored with a warning
        naming the key.
        """
        watcher = self.watcher()
        self.successResultOf(self.etcd.put("/txgetty/services/Echo/x:1", b"not json"))
        self.successResultOf(self.etcd.put("/txgetty/services/Echo/y:1", b'{"address": "y:1", "weight": 0}'))
        self.assertEqual(watcher.servers, {})
        warnings = levelEvents(self.events, LogLevel.warn, "not a txgetty server entry")
        self.assertEqual([w["key"] for w in warnings], ["/txgetty/services/Echo/x:1", "/txgetty/services/Echo/y:1"])

    def test_listenerFails(self) -> None:
        """
        A listener that raises is logged once with its traceback; the other
        listeners are still told.
        """
        watcher = self.watcher()

        @implementer(IServerListListener)
        class Broken:
            def onServersChanged(self, added: Any, removed: Any) -> None:
                raise ZeroDivisionError("listener bug")

        other = Recorder()
        watcher.removeListener(self.recorder)
        watcher.addListener(Broken())
        watcher.addListener(other)
        self.put("10.0.0.1:1")
        self.assertEqual(other.last(), (["10.0.0.1:1"], []))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_compaction(self) -> None:
        """
        A watch cancelled by a compaction is replaced by a new read and
        watch at once, with an info line and no warning; changes made since
        are seen.
        """
        watcher = self.watcher()
        self.etcd.compact()
        self.assertEqual(watcher.state, W.WATCHING.name)
        self.assertEqual(self.etcd.watchCount, 1)
        self.assertEqual(len(levelEvents(self.events, LogLevel.info, "ended")), 1)
        self.assertEqual(levelEvents(self.events, LogLevel.warn, ""), [])
        self.put("10.0.0.1:1")
        self.assertEqual(self.recorder.last(), (["10.0.0.1:1"], []))

    def test_stop(self) -> None:
        """
        Stopped, the watcher closes its watch, cancels its timers and tells
        nothing more; the known servers stay readable.
        """
        self.put("10.0.0.1:1")
        watcher = self.watcher()
        self.successResultOf(watcher.stopService())
        self.assertEqual(self.etcd.watchCount, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        count = len(self.recorder.changes)
        self.put("10.0.0.2:1")
        self.assertEqual(len(self.recorder.changes), count)
        self.assertEqual(sorted(watcher.servers), ["10.0.0.1:1"])

    def test_stopFromWhenReady(self) -> None:
        """
        A stop called by a C{whenReady} callback leaves no probe or watch
        behind.
        """
        watcher = ServiceWatcher(self.etcd, "/txgetty", "Echo", clock=self.clock)
        watcher.whenReady().addCallback(lambda _: watcher.stopService())
        watcher.startService()
        self.assertEqual(watcher.state, W.STOPPED.name)
        self.assertEqual(self.etcd.watchCount, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopBeforeReady(self) -> None:
        """
        Stopped before the first read succeeded, C{whenReady} fails with
        L{CancelledError} and the attempt in flight is cancelled.
        """
        self.etcd.hold()
        watcher = self.watcher()
        d = watcher.whenReady()
        self.successResultOf(watcher.stopService())
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.etcd.held, 0)

    def test_registrationSeen(self) -> None:
        """
        A registration's start is a join for the watcher, its stop a leave.
        """
        self.watcher()
        reg = ServiceRegistration(self.etcd, "/txgetty", ["Echo"], ADDRESS, ttl=3, clock=self.clock)
        reg.startService()
        self.assertEqual(self.recorder.last(), ([ADDRESS], []))
        self.successResultOf(reg.stopService())
        self.assertEqual(self.recorder.last(), ([], [ADDRESS]))


class WatcherOutageTests(WatcherTestCase):
    """
    etcd unavailable: keep the last known servers, log once, diff on return.
    """

    def test_downKeepsListThenDiffs(self) -> None:
        """
        When etcd goes away the servers are kept and one warning logged
        (retries log nothing more); on return the keys are read again and
        only the difference reported, with one info line.
        """
        self.put("10.0.0.1:1")
        self.put("10.0.0.2:1")
        watcher = self.watcher()
        self.etcd.goDown()
        self.assertEqual(watcher.state, W.DOWN.name)
        for _ in range(30):
            self.clock.advance(1.0)
        self.assertEqual(sorted(watcher.servers), ["10.0.0.1:1", "10.0.0.2:1"])
        warnings = levelEvents(self.events, LogLevel.warn, "cannot follow")
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["count"], 2)
        self.assertNotIn("log_failure", warnings[0])
        self.assertGreater(self.etcd.calls.count("getPrefix"), 5)
        count = len(self.recorder.changes)
        self.etcd.comeBack()
        self.successResultOf(self.etcd.delete("/txgetty/services/Echo/10.0.0.1:1"))
        self.put("10.0.0.3:1")
        self.assertEqual(len(self.recorder.changes), count)
        self.clock.advance(5.5)
        self.assertEqual(watcher.state, W.WATCHING.name)
        self.assertEqual(self.recorder.last(), (["10.0.0.3:1"], ["10.0.0.1:1"]))
        self.assertEqual(len(self.recorder.changes), count + 1)
        self.assertEqual(len(levelEvents(self.events, LogLevel.info, "answers again")), 1)
        self.assertEqual(len(levelEvents(self.events, LogLevel.warn, "cannot follow")), 1)

    def test_downAtStart(self) -> None:
        """
        Started while etcd is down, C{whenReady} waits until it answers.
        """
        self.etcd.goDown()
        watcher = self.watcher()
        d = watcher.whenReady()
        self.clock.advance(3)
        self.assertNoResult(d)
        self.etcd.comeBack()
        self.clock.advance(5.5)
        self.assertEqual(self.successResultOf(d), {})

    def test_silentEtcdProbed(self) -> None:
        """
        An etcd that stops answering without closing the watch is noticed
        by the probe within C{probeInterval}: the watcher goes down (one
        warning) and keeps its list.
        """
        self.put("10.0.0.1:1")
        watcher = self.watcher(probeInterval=2.0)
        self.clock.advance(2.0)
        self.assertEqual(self.etcd.calls.count("version"), 1)
        self.etcd.available = False
        self.clock.advance(2.0)
        self.assertEqual(watcher.state, W.DOWN.name)
        self.assertEqual(self.etcd.watchCount, 0)
        self.assertEqual(sorted(watcher.servers), ["10.0.0.1:1"])
        self.assertEqual(len(levelEvents(self.events, LogLevel.warn, "cannot follow")), 1)

    def test_stopWhileDown(self) -> None:
        """
        A stop while down cancels the retry timer.
        """
        watcher = self.watcher()
        self.etcd.goDown()
        self.successResultOf(watcher.stopService())
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(watcher.state, W.STOPPED.name)

    def test_badProbeInterval(self) -> None:
        """
        A probe interval that is not a positive number is a L{ConfigError}.
        """
        for value in (0, -1, "5"):
            self.assertRaises(ConfigError, ServiceWatcher, self.etcd, "/txgetty", "Echo", self.clock, probeInterval=value)
