"""
Tests for the session transition table in L{txgetty.session.lifecycle}: the table is
applied as written, and every transition has the effect its action promises.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.errors import OpenTimeoutError, SessionRefusedError, TLSHandshakeError
from txgetty.session import Session, SessionOwner, lifecycle as S
from txgetty.handlers import EventListener
from txgetty.testing import RecordingListener
from txgetty.wheel import TimerWheel

from ...support.statemachines import assertEveryListedTransition, docstringDrawing


class _Owner(SessionOwner):
    """
    Gives sessions a recording listener; refuses when told to.
    """

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.listener = RecordingListener()

    def configureSession(self, session: Session) -> None:
        if self.refuse:
            raise SessionRefusedError("not today")
        session.codec = HelloCodec()
        session.listener = self.listener


def _session(owner: _Owner | None = None, cls: type = Session) -> tuple[Session, StringTransport, Clock]:
    """
    @return: a session with a transport attached but not yet connected, its
        transport and its clock.
    """
    clock = Clock()
    session = cls(clock=clock, wheel=TimerWheel(clock), owner=owner or _Owner())
    transport = StringTransport()
    session.transport = transport
    return session, transport, clock


class TableTests(SynchronousTestCase):
    """
    The table drives the session: each listed pair moves to its state and
    runs its action; every other pair changes nothing.
    """

    def test_sessionFiresThisTable(self) -> None:
        """
        C{Session._fire} is the fire method made by L{S.TRANSITIONS}, on
        the session's C{_state}.
        """
        self.assertIs(Session._fire, S.TRANSITIONS.fire)
        self.assertEqual(S.TRANSITIONS.attribute, "_state")
        self.assertIs(_session()[0]._state, S.NEW)

    def test_everyListedTransition(self) -> None:
        """
        For every (state, event) in the table, firing the event moves to the
        listed state and runs exactly the listed action with the session
        and the event's arguments, once the state has changed.
        """
        assertEveryListedTransition(self, S.TRANSITIONS, lambda: _session()[0])

    def test_everyOtherPairIgnored(self) -> None:
        """
        A pair missing from the table keeps the state and runs nothing (an
        idempotent close, a late onOpen result, ...).
        """
        for state in S.STATES:
            for event in S.EVENTS:
                if (state, event) in S.TRANSITIONS:
                    continue
                session, transport, _ = _session()
                session._state = state
                self.assertFalse(session._fire(event, Failure(ConnectionDone())))
                self.assertIs(session._state, state)
                self.assertEqual(transport.value(), b"")
                self.assertFalse(transport.disconnecting)

    def test_tableNamesRealActions(self) -> None:
        """
        Every action of the table is the session's own method of that
        name (none is shadowed by another class of the session).
        """
        for _, _, _, action in S.TRANSITIONS.rows:
            if action is not None:
                self.assertIs(getattr(Session, action.__name__), action)

    def test_statesAndEvents(self) -> None:
        """
        The table uses exactly the states of L{S.STATES} and the events of
        L{S.EVENTS}.
        """
        self.assertEqual(set(S.TRANSITIONS.states()), set(S.STATES))
        self.assertEqual(set(S.TRANSITIONS.events()), set(S.EVENTS))

    def test_finalStatesHaveNoExit(self) -> None:
        """
        Nothing leaves C{CLOSED} or C{DEAD}.
        """
        for (state, _), _target in S.TRANSITIONS.items():
            self.assertFalse(state.final, state)

    def test_drawing(self) -> None:
        """
        The drawing in the module's docstring is the table's diagram.
        """
        self.assertEqual(docstringDrawing(S), S.TRANSITIONS.diagram())


class TransitionEffectTests(SynchronousTestCase):
    """
    What each transition does, observed from the outside.
    """

    def test_newConnectOpens(self) -> None:
        """
        NEW --connect--> OPENING --openOk--> OPEN: the new-session callback
        and C{onOpen} run once.
        """
        owner = _Owner()
        session, _, _ = _session(owner)
        session._fire("connect")
        self.assertIs(session._state, S.OPEN)
        self.assertEqual(owner.listener.names(), ["open"])

    def test_newConnectTLSWaitsForHandshake(self) -> None:
        """
        NEW --connectTLS--> HANDSHAKING: configured but not open until the
        handshake; HANDSHAKING --handshake--> OPENING --> OPEN.
        """
        owner = _Owner()
        session, _, _ = _session(owner)
        session._fire("connectTLS")
        self.assertIs(session._state, S.HANDSHAKING)
        self.assertIsNotNone(session.listener)
        self.assertEqual(owner.listener.names(), [])
        session.handshakeCompleted()
        self.assertIs(session._state, S.OPEN)
        self.assertEqual(owner.listener.names(), ["open"])

    def test_newCloseAndLost(self) -> None:
        """
        NEW --close--> DEAD and NEW --lost--> DEAD, and waiters fire.
        """
        for event in ("close", "lost"):
            session, _, _ = _session()
            waited = session.whenClosed()
            session._fire(event, Failure(ConnectionDone()))
            self.assertIs(session._state, S.DEAD)
            self.assertIsNone(self.successResultOf(waited))

    def test_handshakingRefuse(self) -> None:
        """
        HANDSHAKING --refuse--> ABORTING: a refusing callback aborts the
        connection; no listener event.
        """
        session, transport, _ = _session(_Owner(refuse=True))
        session._fire("connectTLS")
        self.assertIs(session._state, S.ABORTING)
        self.assertTrue(transport.disconnected)
        self.assertTrue(session.closeReason.check(SessionRefusedError))

    def test_handshakingClose(self) -> None:
        """
        HANDSHAKING --close--> ABORTING: closing before the handshake aborts.
        """
        session, transport, _ = _session()
        session._fire("connectTLS")
        session.close()
        self.assertIs(session._state, S.ABORTING)
        self.assertTrue(transport.disconnected)

    def test_handshakingLost(self) -> None:
        """
        HANDSHAKING --lost--> DEAD: onError gets a L{TLSHandshakeError}, no
        onOpen and no onClose.
        """
        owner = _Owner()
        session, _, _ = _session(owner)
        session._fire("connectTLS")
        session.connectionLost(Failure(ConnectionLost()))
        self.assertIs(session._state, S.DEAD)
        self.assertEqual(owner.listener.names(), ["error"])
        self.assertTrue(owner.listener.errors[0].check(TLSHandshakeError))
        self.flushLoggedErrors()

    def test_openingRefuse(self) -> None:
        """
        OPENING --refuse--> ABORTING --lost--> DEAD: a refused plain session
        never opens or closes for the listener.
        """
        owner = _Owner(refuse=True)
        session, transport, _ = _session(owner)
        session._fire("connect")
        self.assertIs(session._state, S.ABORTING)
        self.assertTrue(transport.disconnected)
        session.connectionLost(Failure(ConnectionLost()))
        self.assertIs(session._state, S.DEAD)
        self.assertEqual(owner.listener.names(), [])

    def test_openingOpenFail(self) -> None:
        """
        OPENING --openFail--> ABORTING: onOpen raising aborts; onError sees it;
        the session never counts as open, so no onClose.
        """

        class Failing(RecordingListener):
            def onOpen(self, session: Any) -> None:
                raise ValueError("no")

        owner = _Owner()
        owner.listener = Failing()
        session, transport, _ = _session(owner)
        session._fire("connect")
        self.assertIs(session._state, S.ABORTING)
        self.assertTrue(transport.disconnected)
        session.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(owner.listener.names(), ["error"])
        self.assertTrue(owner.listener.errors[0].check(ValueError))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def _pendingOpen(self) -> tuple[Session, StringTransport, Deferred, _Owner]:
        """
        @return: a session whose onOpen returned an unfired Deferred.
        """
        d: Deferred = Deferred(lambda _: self.cancelled.append(True))
        self.cancelled: list[bool] = []

        class Slow(RecordingListener):
            def onOpen(self, session: Any) -> Deferred:
                super().onOpen(session)
                return d

        owner = _Owner()
        owner.listener = Slow()
        session, transport, _ = _session(owner)
        session._fire("connect")
        self.assertIs(session._state, S.OPENING)
        return session, transport, d, owner

    def test_openingOpenOkLater(self) -> None:
        """
        OPENING --openOk--> OPEN when onOpen's Deferred fires; reading is
        paused meanwhile and resumed after.
        """
        session, transport, d, _ = self._pendingOpen()
        self.assertEqual(transport.producerState, "paused")
        d.callback(None)
        self.assertIs(session._state, S.OPEN)
        self.assertEqual(transport.producerState, "producing")

    def test_openingClose(self) -> None:
        """
        OPENING --close--> OPENING_CLOSE --openOk--> CLOSING --lost--> CLOSED:
        a session closed while onOpen runs still counts as opened once onOpen
        succeeds, and gets onClose.
        """
        session, transport, d, owner = self._pendingOpen()
        session.close()
        self.assertIs(session._state, S.OPENING_CLOSE)
        self.assertTrue(transport.disconnecting)
        d.callback(None)
        self.assertIs(session._state, S.CLOSING)
        session.connectionLost(Failure(ConnectionDone()))
        self.assertIs(session._state, S.CLOSED)
        self.assertEqual(owner.listener.names(), ["open", "close"])

    def test_openingCloseThenOpenFail(self) -> None:
        """
        OPENING_CLOSE --openFail--> ABORTING: onOpen failing after a close
        request aborts and never counts as opened.
        """
        session, transport, d, owner = self._pendingOpen()
        session.close()
        d.errback(Failure(ValueError("late no")))
        self.assertIs(session._state, S.ABORTING)
        self.assertTrue(transport.disconnected)
        session.connectionLost(Failure(ConnectionLost()))
        self.assertIs(session._state, S.DEAD)
        self.assertEqual(owner.listener.names(), ["open", "error"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_openingLostCancelsOpen(self) -> None:
        """
        OPENING --lost--> DEAD: the pending onOpen Deferred is cancelled and
        no onClose follows.
        """
        session, _, d, owner = self._pendingOpen()
        session.connectionLost(Failure(ConnectionLost()))
        self.assertIs(session._state, S.DEAD)
        self.assertEqual(self.cancelled, [True])
        self.assertEqual(owner.listener.names(), ["open"])

    def test_openingCloseLost(self) -> None:
        """
        OPENING_CLOSE --lost--> DEAD: lost before onOpen finished.
        """
        session, _, d, owner = self._pendingOpen()
        session.close()
        session.connectionLost(Failure(ConnectionDone()))
        self.assertIs(session._state, S.DEAD)
        self.assertEqual(owner.listener.names(), ["open"])

    def test_openCloseFlushesThenAborts(self) -> None:
        """
        OPEN --close--> CLOSING: loseConnection at once, abortConnection after
        waitTime if the transport is still there; CLOSING --lost--> CLOSED
        with onClose only.
        """
        owner = _Owner()
        session, transport, clock = _session(owner)
        session._fire("connect")
        session.close()
        self.assertIs(session._state, S.CLOSING)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        clock.advance(session.waitTime)
        self.assertTrue(transport.disconnected)
        session.connectionLost(Failure(ConnectionLost()))
        self.assertIs(session._state, S.CLOSED)
        self.assertEqual(owner.listener.names(), ["open", "close"])

    def test_openError(self) -> None:
        """
        OPEN --error--> CLOSING: onError, then a graceful disconnect.
        """
        owner = _Owner()
        session, transport, _ = _session(owner)
        session._fire("connect")
        session.dataReceived(b"\xff\xff\xff\xff")
        self.assertIs(session._state, S.CLOSING)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(owner.listener.names(), ["open", "error"])

    def test_openLostClean(self) -> None:
        """
        OPEN --lost--> CLOSED: a clean close by the peer gives onClose alone.
        """
        owner = _Owner()
        session, _, _ = _session(owner)
        session._fire("connect")
        session.connectionLost(Failure(ConnectionDone()))
        self.assertIs(session._state, S.CLOSED)
        self.assertEqual(owner.listener.names(), ["open", "close"])
        self.assertTrue(session.closeReason.check(ConnectionDone))

    def test_openLostAbnormal(self) -> None:
        """
        OPEN --lost--> CLOSED: a reset gives onError, then onClose.
        """
        owner = _Owner()
        session, _, _ = _session(owner)
        session._fire("connect")
        session.connectionLost(Failure(ConnectionLost("reset")))
        self.assertEqual(owner.listener.names(), ["open", "error", "close"])

    def test_abortingLost(self) -> None:
        """
        ABORTING --lost--> DEAD, and the close Deferred fires.
        """
        session, _, _ = _session(_Owner(refuse=True))
        session._fire("connect")
        d = session.whenClosed()
        self.assertNoResult(d)
        session.connectionLost(Failure(ConnectionLost()))
        self.assertIs(session._state, S.DEAD)
        self.successResultOf(d)

    def test_openTimeoutWhileHandshaking(self) -> None:
        """
        HANDSHAKING --openTimeout--> ABORTING: a handshake that does not end
        within openTimeout is aborted; onError gets L{OpenTimeoutError}
        naming the handshake; no onOpen or onClose ever.
        """
        owner = _Owner()
        session, transport, clock = _session(owner)
        session.openTimeout = 2.0
        session._fire("connectTLS")
        clock.advance(2.1)
        self.assertIs(session._state, S.ABORTING)
        self.assertTrue(transport.disconnected)
        self.assertEqual(owner.listener.names(), ["error"])
        self.assertTrue(owner.listener.errors[0].check(OpenTimeoutError))
        self.assertIn("TLS handshake", owner.listener.errors[0].getErrorMessage())
        session.connectionLost(Failure(ConnectionLost()))
        self.assertIs(session._state, S.DEAD)

    def test_openTimeoutWhileOpening(self) -> None:
        """
        OPENING --openTimeout--> ABORTING and OPENING_CLOSE --openTimeout-->
        ABORTING: an onOpen that never finishes is cancelled at openTimeout.
        """
        for closeFirst in (False, True):
            session, transport, d, owner = self._pendingOpen()
            if closeFirst:
                session.close()
            session._timers._openCheck()
            self.assertIs(session._state, S.ABORTING)
            self.assertEqual(self.cancelled, [True])
            self.assertTrue(transport.disconnected)
            self.assertTrue(owner.listener.errors[-1].check(OpenTimeoutError))
            self.assertIn("onOpen", owner.listener.errors[-1].getErrorMessage())

    def test_openTimerStopsOnOpen(self) -> None:
        """
        A session that opened in time leaves no open timer behind.
        """
        from txgetty.testing import sessionOnStringTransport

        session, _ = sessionOnStringTransport(RecordingListener(), HelloCodec())
        self.assertIsNone(session._timers._open)

    def test_errorWhileOpening(self) -> None:
        """
        OPENING --error--> ABORTING: an error during onOpen (here the
        outbound cap passed by onOpen's own writes) aborts; onError sees it,
        no onClose follows.
        """
        from txgetty.config import SessionConfig
        from txgetty.errors import OutboundOverflowError

        class Flood(RecordingListener):
            def onOpen(self, session: Any) -> None:
                super().onOpen(session)
                session._marks.writable = False
                session.writeBytes(b"x" * 2000)

        owner = _Owner()
        owner.listener = Flood()
        clock = Clock()
        session = Session(clock=clock, wheel=TimerWheel(clock), owner=owner,
                          config=SessionConfig(writeHighMark=100, writeLowMark=0, maxPendingBytes=1000))
        from txgetty.testing import LoopbackTransport
        from twisted.internet.address import IPv4Address

        transport = LoopbackTransport(IPv4Address("TCP", "127.0.0.1", 1), IPv4Address("TCP", "127.0.0.1", 2))
        transport.protocol = session
        session.makeConnection(transport)
        self.assertIs(session._state, S.ABORTING)
        self.assertTrue(transport.aborted)
        self.assertEqual(owner.listener.names(), ["open", "error"])
        self.assertTrue(owner.listener.errors[0].check(OutboundOverflowError))


class PendingOpenTests(SynchronousTestCase):
    """
    L{S.PendingOpen} holds the unfinished C{onOpen} the table's actions
    wait for, find finished or cancel; L{S.NOTHING_PENDING} holds none.
    """

    def test_nothingPending(self) -> None:
        """
        The shared L{S.NOTHING_PENDING} has nothing pending: C{cancel} does
        nothing and does not change it.
        """
        pending = S.NOTHING_PENDING
        self.assertIsNone(pending.deferred)
        pending.cancel()
        self.assertIsNone(pending.deferred)

    def test_cancel(self) -> None:
        """
        C{cancel} cancels the pending Deferred and forgets it; a second
        C{cancel} does nothing.
        """
        d: Deferred[None] = Deferred()
        pending = S.PendingOpen(d)
        self.assertIs(pending.deferred, d)
        pending.cancel()
        self.failureResultOf(d).trap(CancelledError)
        self.assertIsNone(pending.deferred)
        pending.cancel()

    def test_coroutineOnOpen(self) -> None:
        """
        A session whose C{onOpen} is a coroutine waits for it (reading
        paused), then opens; an open timeout meanwhile cancels it and the
        shared L{S.NOTHING_PENDING} is never changed.
        """
        gates: list[Deferred[None]] = []
        cancelled: list[bool] = []

        class Async(RecordingListener):
            async def onOpen(self, session: Any) -> None:  # type: ignore[override]
                gate: Deferred[None] = Deferred()
                gates.append(gate)
                try:
                    await gate
                except CancelledError:
                    cancelled.append(True)
                    raise

        def connect(**config: Any) -> tuple[Session, StringTransport, Clock]:
            clock = Clock()
            session = Session(clock=clock, wheel=TimerWheel(clock), config=SessionConfig(**config))
            session.listener = Async()
            session.codec = HelloCodec()
            transport = StringTransport()
            session.makeConnection(transport)
            return session, transport, clock

        session, transport, _ = connect()
        self.assertEqual((session.state, transport.producerState), ("OPENING", "paused"))
        gates[0].callback(None)
        self.assertEqual((session.state, transport.producerState), ("OPEN", "producing"))
        session, transport, clock = connect(openTimeout=1.0)
        clock.advance(2.0)
        self.assertEqual(session.state, "ABORTING")
        self.assertEqual(cancelled, [True])
        self.assertIsNone(S.NOTHING_PENDING.deferred)

    def test_sessionWaitsThenForgets(self) -> None:
        """
        A session whose C{onOpen} returns an unfinished Deferred keeps it
        pending (reading paused for C{"opening"}) until it fires; once
        open, it holds L{S.NOTHING_PENDING} again and reading goes on.
        """
        gate: Deferred[None] = Deferred()

        class Slow(RecordingListener):
            def onOpen(self, session: Any) -> Deferred[None]:
                super().onOpen(session)
                return gate

        clock = Clock()
        session = Session(clock=clock, wheel=TimerWheel(clock))
        session.listener = Slow()
        session.codec = HelloCodec()
        transport = StringTransport()
        session.makeConnection(transport)
        self.assertEqual((session.state, transport.producerState), ("OPENING", "paused"))
        gate.callback(None)
        self.assertEqual((session.state, transport.producerState), ("OPEN", "producing"))
        self.assertIs(session._opening, S.NOTHING_PENDING)


class FreedTests(SynchronousTestCase):
    """
    A session that ended holds no reference cycle: its reference count
    frees it (with its timers and read gate) as soon as nobody holds it,
    not the garbage collector later.
    """

    def test_freedWithoutTheCollector(self) -> None:
        """
        With the collector off, a session that opened, read a packet and
        was closed is gone once the test drops its references.
        """
        owner = _Owner()
        owner.listener = EventListener()  # (a recording listener would keep it)
        session, transport, _ = _session(owner)
        session.makeConnection(transport)
        session.dataReceived(HelloCodec().write(session, b"hi"))
        session.close()
        session.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(session.state, "CLOSED")
        ref = weakref.ref(session)
        gc.disable()
        self.addCleanup(gc.enable)
        del session, transport
        self.assertIsNone(ref())
