"""
Unit tests of the discovery services on an in-memory etcd and a clock:
every transition of the L{ServiceRegistration} and L{ServiceWatcher}
tables, and what each promises (keys and values, renewals, one log line per
outage, re-registration, the last known servers kept, diffs on return).
"""

from __future__ import annotations

from typing import Any
import json
import sys

from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from txgetty.discovery import ServiceRegistration, ServiceWatcher, registration as R, watcher as W
from txgetty.discovery.testing import MemoryEtcd
from txgetty.errors import ConfigError
from txgetty.statemachine import State, Table

from ...support.discovery import ADDRESS, KEY, levelEvents
from ...support.logs import captureEvents
from ...support.statemachines import docstringDrawing, recordingTable


class TableTests(SynchronousTestCase):
    """
    The transition tables are complete and applied as written.
    """

    def checkTable(self, table: Table, owner: type, states: set[State], initial: State) -> None:
        """
        Every state is reachable from the initial one, every running state
        can stop, each transition runs its action after the state changed,
        the owner's C{_fire} is the table's, and the module's docstring
        draws the table.
        """
        reached, todo = {initial}, [initial]
        while todo:
            state = todo.pop()
            for (source, _), (target, _) in table.items():
                if source is state and target not in reached:
                    reached.add(target)
                    todo.append(target)
        self.assertEqual(reached, states)
        self.assertIs(table.initial, initial)
        for state in states - {initial, R.STOPPING}:
            self.assertIn((state, "stop"), table, state)
        ran: list[tuple[Any, str, Any, tuple]] = []
        recording = recordingTable(table, ran)
        for (state, event), (target, action) in table.items():

            class Owner:
                _state = state

            machine = Owner()
            del ran[:]
            self.assertTrue(recording.fire(machine, event))
            self.assertIs(machine._state, target)
            self.assertEqual(ran, [(machine, action.__name__, target, ())] if action else [])
            if action is not None:
                self.assertIs(getattr(owner, action.__name__), action)
        self.assertIs(owner._fire, table.fire)  # type: ignore[attr-defined]
        self.assertEqual(docstringDrawing(sys.modules[owner.__module__]), table.diagram())

    def test_registrationTable(self) -> None:
        """
        The registration table, as documented in its module.
        """
        states = {R.STOPPED, R.REGISTERING, R.REGISTERED, R.RENEWING, R.DOWN, R.RETRYING, R.STOPPING}
        self.checkTable(R.TRANSITIONS, ServiceRegistration, states, R.STOPPED)

    def test_watcherTable(self) -> None:
        """
        The watcher table, as documented in its module.
        """
        states = {W.STOPPED, W.SYNCING, W.WATCHING, W.DOWN, W.RECOVERING}
        self.checkTable(W.TRANSITIONS, ServiceWatcher, states, W.STOPPED)

    def test_unlistedIgnored(self) -> None:
        """
        An event with no transition from the current state changes nothing:
        a registration that is stopped ignores C{stop} and C{ok}.
        """
        registration = ServiceRegistration(MemoryEtcd(Clock()), "/txgetty", ["Echo"], ADDRESS, clock=Clock())
        for event in ("stop", "ok", "stopped"):
            self.assertFalse(registration._fire(event))
            self.assertEqual(registration.state, "STOPPED")

    def test_missingAction(self) -> None:
        """
        A table whose action is not a function (a method name, as the
        tables once had) is refused at once.
        """
        error = self.assertRaises(ValueError, Table, [(R.STOPPED, "start", R.REGISTERING, "_doRegister")])
        self.assertIn("_doRegister", str(error))


class RegistrationTestCase(SynchronousTestCase):
    """
    A registration of C{Echo} and C{Ping} on a memory etcd.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1767225600)
        self.etcd = MemoryEtcd(self.clock)
        self.events = captureEvents(self)

    def registration(self, **kw: Any) -> ServiceRegistration:
        """
        @param kw: more arguments.
        @return: a registration, not started.
        """
        args: dict[str, Any] = dict(services=["Echo", "Ping"], address=ADDRESS, ttl=3, clock=self.clock)
        args.update(kw)
        return ServiceRegistration(self.etcd, "/txgetty", **args)


class RegistrationTests(RegistrationTestCase):
    """
    Registering, renewing, deregistering.
    """

    def test_keysAndValue(self) -> None:
        """
        Started, it puts C{PREFIX/services/<Service>/<host:port>} for each
        service, valued C{{"address", "weight", "metadata", "started"}},
        under one lease; C{whenRegistered} fires and C{registered} is true.
        """
        reg = self.registration(weight=3, metadata={"zone": "a"})
        d = reg.whenRegistered()
        reg.startService()
        self.successResultOf(d)
        self.assertTrue(reg.registered)
        keys = self.etcd.keys()
        self.assertEqual(sorted(keys), [KEY, "/txgetty/services/Ping/127.0.0.1:8091"])
        self.assertEqual(json.loads(keys[KEY]), {"address": ADDRESS, "weight": 3, "metadata": {"zone": "a"}, "started": 1767225600})
        self.assertEqual({self.etcd.leaseOf(k) for k in keys}, {reg.lease})
        self.successResultOf(reg.whenRegistered())

    def test_renewsEveryThirdOfTTL(self) -> None:
        """
        The lease is renewed every C{ttl / 3} seconds, so the keys outlive
        many TTLs.
        """
        reg = self.registration()
        reg.startService()
        for _ in range(30):
            self.clock.advance(1.0)
        self.assertEqual(self.etcd.calls.count("keepAliveOnce"), 30)
        self.assertIn(KEY, self.etcd.keys())
        self.assertEqual(reg.state, R.REGISTERED.name)

    def test_stopRevokes(self) -> None:
        """
        Stopped, it revokes the lease, which deletes the keys, and leaves no
        timer behind.
        """
        reg = self.registration()
        reg.startService()
        self.successResultOf(reg.stopService())
        self.assertEqual(self.etcd.keys(), {})
        self.assertEqual(reg.state, R.STOPPED.name)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.successResultOf(reg.stopService())

    def test_stopFromWhenRegistered(self) -> None:
        """
        A stop called by a C{whenRegistered} callback leaves no renewal
        timer behind.
        """
        reg = self.registration()
        stopped = []
        reg.whenRegistered().addCallback(lambda _: stopped.append(reg.stopService()))
        reg.startService()
        self.successResultOf(stopped[0])
        self.assertEqual(reg.state, R.STOPPED.name)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopBounded(self) -> None:
        """
        A stop waits at most C{stopTimeout} for etcd, then gives up with one
        info line saying the keys expire with the lease.
        """
        reg = self.registration(stopTimeout=2)
        reg.startService()
        self.etcd.hold()
        d = reg.stopService()
        self.clock.advance(1.9)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        self.successResultOf(d)
        self.assertEqual(len(levelEvents(self.events, LogLevel.info, "expire with")), 1)
        self.assertEqual(self.etcd.held, 0)

    def test_stopWhileRegistering(self) -> None:
        """
        A stop during the first attempt cancels it; C{whenRegistered} fails
        with L{CancelledError}; nothing is logged as an error.
        """
        self.etcd.hold()
        reg = self.registration()
        d = reg.whenRegistered()
        reg.startService()
        self.assertEqual(self.etcd.held, 1)
        self.successResultOf(reg.stopService())
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.etcd.held, 0)
        self.assertEqual([e for e in self.events if e.get("log_level") in (LogLevel.warn, LogLevel.error)], [])

    def test_restart(self) -> None:
        """
        A registration started again after a stop registers again, with a
        new start time.
        """
        reg = self.registration()
        reg.startService()
        self.successResultOf(reg.stopService())
        self.clock.advance(60)
        reg.startService()
        self.assertEqual(json.loads(self.etcd.keys()[KEY])["started"], 1767225660)

    def test_badSettings(self) -> None:
        """
        Values that cannot be registered are L{ConfigError}s naming them.
        """
        cases = [
            (dict(ttl=1), "etcd's minimum"),
            (dict(services=[]), "list of service names"),
            (dict(services="Echo"), "list of service names"),
            (dict(services=["a/b"]), "without '/'"),
            (dict(services=["Echo", "Echo"]), "named twice"),
            (dict(address="nohost"), "host:port"),
            (dict(address="h:70000"), "1-65535"),
            (dict(address="::1:80"), "IPv6"),
            (dict(weight=0), "weight"),
            (dict(metadata={"x": object()}), "metadata"),
            (dict(stopTimeout=0), "stopTimeout"),
        ]
        for kw, words in cases:
            self.assertIn(words, str(self.assertRaises(ConfigError, self.registration, **kw)), kw)
        self.registration(address="[::1]:8091")


class RegistrationOutageTests(RegistrationTestCase):
    """
    etcd unavailable: keep trying, log once, register again.
    """

    def test_downThenBack(self) -> None:
        """
        A failed renewal logs one warning (not an error, no traceback);
        retries with backoff log nothing more; when etcd answers again the
        keys are registered again, with one info line.
        """
        reg = self.registration()
        reg.startService()
        self.etcd.goDown()
        self.clock.advance(1.0)
        self.assertEqual(reg.state, R.DOWN.name)
        for _ in range(40):
            self.clock.advance(1.0)
        retries = self.etcd.calls.count("keepAliveOnce") + self.etcd.calls.count("grantLease")
        self.assertGreater(retries, 5)
        warnings = levelEvents(self.events, LogLevel.warn, "could not register")
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["error"], "EtcdUnavailableError")
        self.assertEqual(warnings[0]["registry"], self.etcd.url)
        self.assertIn(self.etcd.url, warnings[0]["reason"])
        self.assertNotIn("log_failure", warnings[0])
        self.assertFalse(reg.registered)
        self.etcd.comeBack()
        self.clock.advance(5.5)
        self.assertEqual(reg.state, R.REGISTERED.name)
        self.assertIn(KEY, self.etcd.keys())
        self.assertEqual(len(levelEvents(self.events, LogLevel.info, "answers again")), 1)
        self.assertEqual([e for e in self.events if e.get("log_level") == LogLevel.error], [])

    def test_downAtStart(self) -> None:
        """
        Started while etcd is down: C{whenRegistered} waits, and fires once
        etcd answers.
        """
        self.etcd.goDown()
        reg = self.registration()
        d = reg.whenRegistered()
        reg.startService()
        self.clock.advance(3)
        self.assertNoResult(d)
        self.etcd.comeBack()
        self.clock.advance(5.5)
        self.successResultOf(d)

    def test_leaseExpiredWhileCutOff(self) -> None:
        """
        Cut off for longer than the TTL (etcd up but unreachable), the lease
        expired and the keys went; on return a new lease is granted and the
        keys put again.
        """
        reg = self.registration()
        reg.startService()
        oldLease = reg.lease
        self.etcd.available = False
        self.clock.advance(10)
        self.assertEqual(self.etcd.keys(), {})
        self.etcd.comeBack()
        self.clock.advance(5.5)
        self.assertEqual(reg.state, R.REGISTERED.name)
        self.assertNotEqual(reg.lease, oldLease)
        self.assertEqual(self.etcd.leaseOf(KEY), reg.lease)

    def test_leaseLostWhileUp(self) -> None:
        """
        A renewal that finds the lease gone (revoked, or expired while the
        process was stalled) logs one warning and registers at once with a
        new lease.
        """
        reg = self.registration()
        reg.startService()
        self.successResultOf(self.etcd.revokeLease(reg.lease))
        self.assertEqual(self.etcd.keys(), {})
        self.clock.advance(1.0)
        self.assertEqual(reg.state, R.REGISTERED.name)
        self.assertIn(KEY, self.etcd.keys())
        self.assertEqual(len(levelEvents(self.events, LogLevel.warn, "expired")), 1)

    def test_leaseLostFields(self) -> None:
        """
        The warning of a lost lease carries the fields of
        docs/observability.md ("Logs"): C{lease} (the lost one),
        C{services}, C{address}, C{ttl} and C{registry} (the etcd URL).
        """
        reg = self.registration()
        reg.startService()
        lost = reg.lease
        self.successResultOf(self.etcd.revokeLease(lost))
        self.clock.advance(1.0)
        [event] = levelEvents(self.events, LogLevel.warn, "expired")
        self.assertEqual(
            {k: event[k] for k in ("lease", "services", "address", "ttl", "registry")},
            {"lease": lost, "services": ["Echo", "Ping"], "address": ADDRESS, "ttl": 3, "registry": self.etcd.url},
        )
        self.assertNotEqual(reg.lease, lost)

    def test_stopWhileDown(self) -> None:
        """
        A stop while etcd is down ends at once (the revoke fails), with one
        info line, and nothing is tried after it.
        """
        reg = self.registration()
        reg.startService()
        self.etcd.goDown()
        self.clock.advance(1.0)
        self.successResultOf(reg.stopService())
        self.assertEqual(reg.state, R.STOPPED.name)
        calls = len(self.etcd.calls)
        self.clock.advance(60)
        self.assertEqual(len(self.etcd.calls), calls, "no attempt after the stop")
        self.assertEqual(len(levelEvents(self.events, LogLevel.info, "could not deregister")), 1)
