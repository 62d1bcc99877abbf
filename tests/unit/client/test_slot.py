"""
Unit tests of one client slot (L{txgetty.client.slot}): its transition
table, and what each transition does, against a pool that is an
L{ISlotOwner <txgetty.interfaces.ISlotOwner>} and a controlled endpoint.
"""

from __future__ import annotations

import errno
import random
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import (
    ConnectError,
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
    NoRouteError,
    TCPTimedOutError,
)
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txgetty.client import slot as _slot
from txgetty.client.reconnect import ReconnectPolicy
from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.errors import ConnectTimeoutError, SelfConnectError, SessionRefusedError, TLSHandshakeError
from txgetty.interfaces import ISlotOwner
from txgetty.testing import ControlledEndpoint, RecordingListener
from txgetty.wheel import TimerWheel

from ...support.clients import ClientHarness
from ...support.logs import captureEvents
from ...support.statemachines import docstringDrawing, recordingTable


class SlotTableTests(SynchronousTestCase):
    """
    A slot's life cycle is L{_slot.TRANSITIONS}, applied as written.
    """

    def test_slotFiresThisTable(self) -> None:
        """
        C{Slot.fire} is the table's fire method, on the slot's C{state},
        which starts C{IDLE}.
        """
        self.assertIs(_slot.Slot.fire, _slot.TRANSITIONS.fire)
        self.assertEqual(_slot.TRANSITIONS.attribute, "state")
        self.assertIs(ClientHarness().client._slots[0].state, _slot.IDLE)

    def test_everyListedTransition(self) -> None:
        """
        Each pair of the table moves a slot to its state, then runs its
        action (a method of L{_slot.Slot}) with the event's arguments.
        """
        ran: list[tuple[Any, str, Any, tuple]] = []
        table = recordingTable(_slot.TRANSITIONS, ran)
        for (state, event), (target, action) in _slot.TRANSITIONS.items():
            slot = ClientHarness().client._slots[0]
            slot.state = state
            del ran[:]
            self.assertTrue(table.fire(slot, event, "arg"))
            self.assertIs(slot.state, target)
            self.assertEqual(ran, [(slot, action.__name__, target, ("arg",))] if action else [])
            if action is not None:
                self.assertIs(getattr(_slot.Slot, action.__name__), action)

    def test_everyOtherPairIgnored(self) -> None:
        """
        A pair not in the table changes nothing: no state change, no dial,
        no timer.
        """
        for state in _slot.STATES:
            for event in _slot.EVENTS:
                if (state, event) in _slot.TRANSITIONS:
                    continue
                h = ClientHarness()
                slot = h.client._slots[0]
                slot.state = state
                self.assertFalse(slot.fire(event))
                self.assertIs(slot.state, state)
                self.assertEqual((h.client.dials, h.clock.getDelayedCalls()), (0, []))

    def test_drawing(self) -> None:
        """
        The drawing in the slot module's docstring is the table's diagram.
        """
        self.assertEqual(docstringDrawing(_slot), _slot.TRANSITIONS.diagram())


@implementer(ISlotOwner)
class FakePool:
    """
    An L{ISlotOwner} that records what its slots report.

    @ivar reports: C{(method, argument)} per report, in order.
    """

    def __init__(self, **policy: Any) -> None:
        self.label = "tcp:127.0.0.1:8090"
        self.clock = Clock()
        self.wheel = TimerWheel(self.clock)
        self.config = SessionConfig()
        self.taskPool = None
        self.endpoint = ControlledEndpoint()
        self.connectTimeout = 5.0
        self.reconnect = ReconnectPolicy(jitter=0, **policy)
        self.random = random.Random(0)
        self.dials = self.failures = self.selfConnects = 0
        self.reports: list[tuple[str, Any]] = []
        self.accept: Any = True
        self.listener = RecordingListener()

    def configureNewSession(self, session: Any) -> object:
        session.codec = HelloCodec()
        session.listener = self.listener
        self.reports.append(("configureNewSession", session))
        return self.accept

    def slotOpened(self, slot: Any) -> None:
        self.reports.append(("slotOpened", slot))

    def slotSessionEnded(self, session: Any) -> None:
        self.reports.append(("slotSessionEnded", session))

    def slotGaveUp(self, slot: Any) -> None:
        self.reports.append(("slotGaveUp", slot))

    def names(self) -> list[str]:
        """
        @return: the names of the reports, in order.
        """
        return [name for name, _ in self.reports]


def slotTimers(pool: FakePool) -> list[Any]:
    """
    @param pool: a fake pool.
    @return: the slot's pending timers (connect timeout, retry), not the
        timer wheel's tick.
    """
    return [c for c in pool.clock.getDelayedCalls() if c.args in (("timeout",), ("retry",))]


class SlotOwnerTests(SynchronousTestCase):
    """
    A slot knows its pool only as an L{ISlotOwner}: the client is one, and
    any other provider works.
    """

    def test_clientProvidesSlotOwner(self) -> None:
        """
        L{Client <txgetty.Client>} provides L{ISlotOwner}, and its slots are
        given the client itself.
        """
        client = ClientHarness().client
        self.assertTrue(verifyObject(ISlotOwner, client))
        self.assertIs(client._slots[0].client, client)

    def test_fakePoolIsSlotOwner(self) -> None:
        """
        The fake pool of these tests provides the whole interface.
        """
        self.assertTrue(verifyObject(ISlotOwner, FakePool()))


class SlotBehaviourTests(SynchronousTestCase):
    """
    What a slot does at each step, seen from its pool.
    """

    def test_dialCountsAndArmsTimeout(self) -> None:
        """
        Starting dials once (the pool's C{dials} grows) with the connect
        timeout armed: after C{connectTimeout} the slot fires C{timeout}.
        """
        pool = FakePool()
        slot = _slot.Slot(pool, 0)
        slot.fire("start")
        self.assertEqual((slot.state, pool.dials, len(pool.endpoint.attempts)), (_slot.DIALING, 1, 1))
        [timer] = slotTimers(pool)
        self.assertEqual((timer.getTime(), timer.args), (5.0, ("timeout",)))

    def test_openReported(self) -> None:
        """
        A connection whose session opens runs the new-session callback,
        reports C{slotOpened}, cancels the connect timer and leaves the
        session on the slot.
        """
        pool = FakePool()
        slot = _slot.Slot(pool, 0)
        slot.fire("start")
        session = pool.endpoint.last.succeed()
        self.assertEqual(pool.names(), ["configureNewSession", "slotOpened"])
        self.assertEqual((slot.state, slot.session), (_slot.OPEN, session))
        self.assertEqual(slotTimers(pool), [])

    def test_refusedByCallback(self) -> None:
        """
        A new-session callback that returns C{False} refuses the session: the
        attempt counts as failed and the slot waits to retry.
        """
        pool = FakePool()
        pool.accept = False
        slot = _slot.Slot(pool, 0)
        slot.fire("start")
        pool.endpoint.last.succeed()
        self.assertTrue(pool.endpoint.last.transport.aborted)
        pool.endpoint.last.drop(clean=False)
        self.assertEqual((slot.state, pool.failures, slot.failures), (_slot.WAITING, 1, 1))
        self.assertTrue(slot.lastFailure.check(SessionRefusedError))
        self.assertNotIn("slotOpened", pool.names())

    def test_selfConnect(self) -> None:
        """
        A connection to itself (local address = remote address) is refused
        with L{SelfConnectError} and counted in the pool's C{selfConnects};
        the callback does not run.
        """
        pool = FakePool()
        slot = _slot.Slot(pool, 0)
        slot.fire("start")
        here = IPv4Address("TCP", "127.0.0.1", 8090)
        pool.endpoint.last.succeed(host=here, peer=here)
        pool.endpoint.last.drop(clean=False)
        self.assertEqual((pool.selfConnects, slot.state), (1, _slot.WAITING))
        self.assertTrue(slot.lastFailure.check(SelfConnectError))
        self.assertNotIn("configureNewSession", pool.names())

    def test_stableSessionResetsBackoff(self) -> None:
        """
        A session that lived C{stableAfter} seconds resets the backoff: after
        its loss the next attempt waits C{initialDelay} again, and the loss
        is not a failed attempt of the pool.
        """
        pool = FakePool(initialDelay=0.5, stableAfter=1.0)
        slot = _slot.Slot(pool, 0)
        slot.failures = 3
        slot.fire("start")
        pool.endpoint.last.succeed()
        pool.clock.advance(1.0)
        pool.endpoint.last.drop()
        self.assertEqual((slot.state, slot.failures, pool.failures), (_slot.WAITING, 1, 0))
        self.assertIn(("slotSessionEnded", pool.endpoint.last.protocol), pool.reports)
        [retry] = slotTimers(pool)
        self.assertEqual((retry.getTime() - pool.clock.seconds(), retry.args), (0.5, ("retry",)))

    def test_shortSessionIsAFailure(self) -> None:
        """
        A session that dies before C{stableAfter} counts as a failed attempt:
        the pool's C{failures} grows and the backoff goes on growing.
        """
        pool = FakePool(initialDelay=0.5, stableAfter=1.0)
        slot = _slot.Slot(pool, 0)
        slot.fire("start")
        pool.endpoint.last.succeed()
        pool.clock.advance(0.5)
        pool.endpoint.last.drop(clean=False)
        self.assertEqual((slot.failures, pool.failures), (1, 1))
        self.assertTrue(slot.lastFailure.check(ConnectionLost))

    def test_giveUpReported(self) -> None:
        """
        After C{maxAttempts} consecutive failures the slot is C{GAVE_UP},
        reports C{slotGaveUp} once, logs one warning naming the cause, and
        dials no more.
        """
        events = captureEvents(self)
        pool = FakePool(maxAttempts=2)
        slot = _slot.Slot(pool, 0)
        slot.fire("start")
        pool.endpoint.last.fail()
        pool.clock.advance(10)
        pool.endpoint.last.fail()
        self.assertEqual((slot.state, pool.names(), pool.dials), (_slot.GAVE_UP, ["slotGaveUp"], 2))
        self.assertEqual(slotTimers(pool), [])
        [warning] = [e for e in events if e.get("log_level") == LogLevel.warn]
        self.assertIn("gave up after 2 failed attempts; last: connection refused", formatEvent(warning))

    def test_reconnectFields(self) -> None:
        """
        The info line of a failed attempt that will be retried carries the
        fields of docs/observability.md ("Logs"): C{endpoint} (the client's),
        C{slot}, C{event}, C{reason} (in plain words), C{error},
        C{attempt} and C{delay}.
        """
        events = captureEvents(self)
        pool = FakePool()
        slot = _slot.Slot(pool, 0)
        slot.fire("start")
        pool.endpoint.last.fail()
        [event] = [e for e in events if e.get("log_namespace") == "txgetty.client.slot"]
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(
            {k: event[k] for k in ("endpoint", "slot", "error", "attempt")},
            {"endpoint": "tcp:127.0.0.1:8090", "slot": 0, "error": "ConnectionRefusedError", "attempt": 1},
        )
        self.assertEqual(event["reason"], _slot.describeConnectFailure(slot.lastFailure))
        self.assertTrue(event["reason"].startswith("connection refused"), event["reason"])
        self.assertEqual(event["delay"], slotTimers(pool)[0].getTime() - pool.clock.seconds())
        self.assertIn(event["event"], formatEvent(event))

    def test_whenStopped(self) -> None:
        """
        C{whenStopped} fires at once for a slot that never started, and for
        a waiting slot once C{stop} is fired (its retry timer cancelled).
        """
        pool = FakePool()
        slot = _slot.Slot(pool, 0)
        self.successResultOf(slot.whenStopped())
        slot.fire("start")
        pool.endpoint.last.fail()
        waiting = slot.whenStopped()
        self.assertNoResult(waiting)
        slot.fire("stop")
        self.successResultOf(waiting)
        self.assertEqual((slot.state, slotTimers(pool)), (_slot.STOPPED, []))

    def test_repr(self) -> None:
        """
        A slot's repr names its index, its pool's label and its state.
        """
        self.assertEqual(repr(_slot.Slot(FakePool(), 3)), "<Slot 3 of tcp:127.0.0.1:8090 IDLE>")


class DescribeConnectFailureTests(SynchronousTestCase):
    """
    L{_slot.describeConnectFailure} says in plain words why an attempt
    failed, with a hint and the error's type.
    """

    def test_wording(self) -> None:
        """
        Each common cause gets its words and the exception's class name in
        brackets; an unknown one its type and message.
        """
        cases = [
            (ConnectionRefusedError(), "connection refused: nothing listens there", "[ConnectionRefusedError]"),
            (DNSLookupError(), "unknown host: the name does not resolve", "[DNSLookupError]"),
            (TCPTimedOutError(), "no answer:", "[TCPTimedOutError]"),
            (ConnectTimeoutError("took too long"), "no answer: took too long", "[ConnectTimeoutError]"),
            (NoRouteError(), "no route to the host", "[NoRouteError]"),
            (ValueError("odd"), "ValueError: odd", ""),
        ]
        for error, words, kind in cases:
            text = _slot.describeConnectFailure(Failure(error))
            self.assertIn(words, text)
            self.assertTrue(text.endswith(kind), text)

    def test_missingSocketFile(self) -> None:
        """
        A UNIX connect to a path with no socket says so.
        """
        error = ConnectError(osError=errno.ENOENT)
        self.assertIn("no socket file there", _slot.describeConnectFailure(Failure(error)))

    def test_tlsAsItIs(self) -> None:
        """
        A TLS handshake error already says what went wrong: it is kept as
        it is.
        """
        error = TLSHandshakeError("the server's certificate is not trusted")
        self.assertEqual(_slot.describeConnectFailure(Failure(error)), "the server's certificate is not trusted")

    def test_none(self) -> None:
        """
        No failure (nothing failed yet) is C{-}.
        """
        self.assertEqual(_slot.describeConnectFailure(None), "-")
