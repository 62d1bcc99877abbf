"""
Unit tests for L{txgetty.client.Client}, its slots (L{txgetty.client.slot}) and
L{txgetty.client.reconnect.ReconnectPolicy}, on a fake clock with connection
attempts completed by hand (L{txgetty.testing.ControlledEndpoint}).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty.client import Client, slot as _slot
from txgetty.client.reconnect import ReconnectPolicy
from txgetty.errors import (
    ConfigError,
    ConnectGaveUpError,
    ConnectTimeoutError,
    NoSessionError,
    SelfConnectError,
)
from txgetty.interfaces import IClient
from txgetty.testing import ControlledEndpoint, RecordingListener

from ...support.clients import ClientHarness


class ClientTests(SynchronousTestCase):
    """
    Tests for the client pool.
    """

    def test_interface(self) -> None:
        """
        The client provides L{IClient}.
        """
        self.assertTrue(verifyObject(IClient, ClientHarness().client))

    def test_poolOpens(self) -> None:
        """
        Starting dials every slot once; whenAllConnected fires when all are
        open, with the sessions.
        """
        h = ClientHarness(connections=3)
        h.client.startService()
        self.assertEqual(len(h.endpoint.attempts), 3)
        waiting = h.client.whenAllConnected()
        for attempt in h.endpoint.attempts:
            attempt.succeed()
        self.assertEqual(len(self.successResultOf(waiting)), 3)
        self.assertEqual(h.client.opened, 3)
        self.successResultOf(h.client.whenConnected())

    def test_backoffSequence(self) -> None:
        """
        Consecutive refused attempts wait 0.3, 0.6, 1.2, ... seconds, each
        attempt dialled from the previous failure, never sooner.
        """
        h = ClientHarness()
        h.client.startService()
        seen = []
        for _ in range(6):
            h.endpoint.last.fail()
            call = [c for c in h.clock.getDelayedCalls() if c.args == ("retry",)][0]
            seen.append(round(call.getTime() - h.clock.seconds(), 6))
            before = len(h.endpoint.attempts)
            h.clock.advance(seen[-1] - 0.01)
            self.assertEqual(len(h.endpoint.attempts), before)
            h.clock.advance(0.02)
            self.assertEqual(len(h.endpoint.attempts), before + 1)
        self.assertEqual(seen, [0.3, 0.6, 1.2, 2.4, 4.8, 9.6])

    def test_maxAttempts(self) -> None:
        """
        After maxAttempts failures the slot gives up: whenConnected fails with
        L{ConnectGaveUpError} naming the last error, no timer is left.
        """
        h = ClientHarness(reconnect=ReconnectPolicy(maxAttempts=3, jitter=0))
        h.client.startService()
        waiting = h.client.whenConnected()
        for _ in range(3):
            h.endpoint.last.fail()
            h.clock.advance(100)
        failure = self.failureResultOf(waiting, ConnectGaveUpError)
        self.assertIn("ConnectionRefusedError", failure.getErrorMessage())
        self.assertEqual(len(h.endpoint.attempts), 3)
        self.assertEqual(h.clock.getDelayedCalls(), [])
        self.assertEqual(h.client.gaveUp, 1)
        self.failureResultOf(h.client.whenConnected(), ConnectGaveUpError)

    def test_slotStatesAndAllGaveUp(self) -> None:
        """
        C{slotStates} names each slot's state in slot order; C{allGaveUp} is
        true only once no slot will dial again (every one gave up or is
        stopped).
        """
        h = ClientHarness(connections=2, reconnect=ReconnectPolicy(maxAttempts=1, jitter=0))
        self.assertEqual((h.client.slotStates(), h.client.allGaveUp()), (["IDLE", "IDLE"], False))
        h.client.startService()
        h.endpoint.attempts[0].succeed()
        self.assertEqual(h.client.slotStates(), ["OPEN", "DIALING"])
        h.endpoint.attempts[1].fail()
        self.assertEqual((h.client.slotStates(), h.client.allGaveUp()), (["OPEN", "GAVE_UP"], False))
        h.client.stopService()
        h.endpoint.attempts[0].drop()
        self.assertEqual((h.client.slotStates(), h.client.allGaveUp()), (["STOPPED", "STOPPED"], True))

    def test_allGaveUpWhenEverySlotGaveUp(self) -> None:
        """
        A pool whose every slot gave up (not stopped) has C{allGaveUp}.
        """
        h = ClientHarness(connections=2, reconnect=ReconnectPolicy(maxAttempts=1, jitter=0))
        h.client.startService()
        for attempt in h.endpoint.attempts:
            attempt.fail()
        self.assertEqual((h.client.slotStates(), h.client.allGaveUp()), (["GAVE_UP", "GAVE_UP"], True))

    def test_stopDuringBackoff(self) -> None:
        """
        Stopping while a retry is pending cancels it: nothing is dialled after.
        """
        h = ClientHarness()
        h.client.startService()
        h.endpoint.last.fail()
        self.successResultOf(h.client.stopService())
        h.clock.advance(1000)
        self.assertEqual(len(h.endpoint.attempts), 1)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_stopDuringConnect(self) -> None:
        """
        Stopping while an attempt is pending cancels the attempt; its failure
        does not trigger a retry.
        """
        h = ClientHarness()
        h.client.startService()
        waiting = h.client.whenConnected()
        stopped = h.client.stopService()
        self.assertTrue(h.endpoint.last.cancelled)
        self.successResultOf(stopped)
        self.failureResultOf(waiting, CancelledError)
        h.clock.advance(1000)
        self.assertEqual(len(h.endpoint.attempts), 1)

    def test_stopClosesOpenSessions(self) -> None:
        """
        Stopping closes open sessions gracefully and fires once they are gone;
        a lost session of a stopped client is not re-dialled.
        """
        h = ClientHarness(connections=2)
        h.client.startService()
        for attempt in h.endpoint.attempts:
            attempt.succeed()
        stopped = h.client.stopService()
        self.assertNoResult(stopped)
        for attempt in h.endpoint.attempts:
            self.assertTrue(attempt.transport.disconnecting)
            attempt.drop()
        self.successResultOf(stopped)
        h.clock.advance(1000)
        self.assertEqual(len(h.endpoint.attempts), 2)
        self.assertEqual(h.listener.names(), ["open", "open", "close", "close"])
        self.assertEqual(h.client.sessions(), [])

    def test_restartAfterStop(self) -> None:
        """
        A stopped client can be started again.
        """
        h = ClientHarness()
        h.client.startService()
        h.client.stopService()
        h.client.startService()
        self.assertEqual(len(h.endpoint.attempts), 2)

    def test_lazyReconnect(self) -> None:
        """
        A session that lived long is re-dialled after the initial delay; one
        that died at once counts as a failure, so the delay keeps growing.
        """
        h = ClientHarness()
        h.client.startService()
        h.endpoint.last.succeed()
        h.clock.advance(60)
        h.endpoint.last.drop()
        self.assertEqual(h.delays(), [0.3])
        h.clock.advance(0.3)
        for expected in (0.6, 1.2, 2.4):
            h.endpoint.last.succeed()
            h.endpoint.last.drop()
            self.assertEqual(h.delays(), [expected])
            h.clock.advance(expected)

    def test_refusingCallbackBacksOff(self) -> None:
        """
        A new-session callback that refuses every session makes the slot back
        off like failed connects: no hot loop, no onOpen.
        """
        h = ClientHarness()
        h.refuse = True
        h.client.startService()
        for expected in (0.3, 0.6, 1.2):
            h.endpoint.last.succeed()
            h.endpoint.last.drop(clean=False)
            self.assertEqual(h.delays(), [expected])
            h.clock.advance(expected)
        self.assertEqual(h.listener.names(), [])
        self.assertEqual(h.client.opened, 0)

    def test_selfConnect(self) -> None:
        """
        A connection whose local and remote addresses are equal is dropped,
        counted, and retried with backoff.
        """
        h = ClientHarness()
        h.client.startService()
        same = IPv4Address("TCP", "127.0.0.1", 8090)
        h.endpoint.last.succeed(host=same, peer=same)
        self.assertTrue(h.endpoint.last.transport.aborted)
        h.endpoint.last.drop(clean=False)
        self.assertEqual(h.client.selfConnects, 1)
        slot = h.client._slots[0]
        self.assertTrue(slot.lastFailure.check(SelfConnectError))
        self.assertEqual(h.delays(), [0.3])
        self.assertEqual(h.listener.names(), [])

    def test_connectTimeout(self) -> None:
        """
        An attempt still pending after connectTimeout is cancelled and counts
        as a failure with L{ConnectTimeoutError}.
        """
        h = ClientHarness(connectTimeout=2.0)
        h.client.startService()
        h.clock.advance(2.0)
        self.assertTrue(h.endpoint.last.cancelled)
        slot = h.client._slots[0]
        self.assertTrue(slot.lastFailure.check(ConnectTimeoutError))
        self.assertIn("connectTimeout", slot.lastFailure.getErrorMessage())
        self.assertEqual(slot.state, _slot.WAITING)

    def test_connectTimeoutAfterConnect(self) -> None:
        """
        A session connected but not open (here onOpen never finishes; a TLS
        handshake that never ends is the same) is also abandoned at
        connectTimeout, with L{ConnectTimeoutError}.
        """
        h = ClientHarness(connectTimeout=2.0)

        class Slow(RecordingListener):
            def onOpen(self, session: Any) -> Deferred:
                return Deferred()

        h.listener = Slow()
        h.client.startService()
        h.endpoint.last.succeed()
        h.clock.advance(2.0)
        self.assertTrue(h.endpoint.last.transport.disconnecting)
        h.endpoint.last.drop()
        slot = h.client._slots[0]
        self.assertTrue(slot.lastFailure.check(ConnectTimeoutError))
        self.assertEqual(slot.state, _slot.WAITING)

    def test_poolNeverExceedsSize(self) -> None:
        """
        Through repeated losses and reconnects, a pool of 4 never has more
        than 4 sessions open or attempts in flight.
        """
        h = ClientHarness(connections=4)
        h.client.startService()
        for _ in range(5):
            pending = [a for a in h.endpoint.attempts if not a.deferred.called]
            self.assertLessEqual(len(pending), 4)
            for attempt in pending:
                attempt.succeed()
            self.assertEqual(len(h.client.sessions()), 4)
            h.clock.advance(5)
            for attempt in h.endpoint.attempts:
                if attempt.transport is not None and not attempt.transport.lost:
                    attempt.drop()
            self.assertEqual(len(h.client.sessions()), 0)
            h.clock.advance(60)
        self.assertEqual(h.client.opened, 20)

    def test_choice(self) -> None:
        """
        Round-robin cycles over the open sessions; least-loaded picks the one
        with the fewest bytes waiting; random picks among them.
        """
        for choose in ("round-robin", "least-loaded", "random"):
            h = ClientHarness(connections=3, choose=choose)
            h.client.startService()
            for attempt in h.endpoint.attempts:
                attempt.succeed()
            sessions = h.client.sessions()
            if choose == "round-robin":
                picks = [h.client.session() for _ in range(6)]
                self.assertEqual(picks[:3], picks[3:])
                self.assertEqual(set(map(id, picks)), set(map(id, sessions)))
            elif choose == "least-loaded":
                sessions[0].writeBytes(b"x" * 100)
                sessions[2].writeBytes(b"x" * 10)
                self.assertIs(h.client.session(), sessions[1])
            else:
                picks = {id(h.client.session()) for _ in range(50)}
                self.assertEqual(picks, set(map(id, sessions)))

    def test_noSession(self) -> None:
        """
        Asking for a session while none is open raises L{NoSessionError}
        saying what the slots are doing.
        """
        h = ClientHarness()
        h.client.startService()
        with self.assertRaises(NoSessionError) as ctx:
            h.client.session()
        self.assertIn("DIALING", str(ctx.exception))

    def test_badParameters(self) -> None:
        """
        A pool size below 1, an unknown choice or a bad timeout are refused.
        """
        for kw in ({"connections": 0}, {"choose": "best"}, {"connectTimeout": 0}):
            self.assertRaises(ConfigError, Client, ControlledEndpoint(), lambda s: None,
                              reactor=Clock(), **kw)

    def test_stat(self) -> None:
        """
        stat() gives the pool's counters and slot states.
        """
        h = ClientHarness(connections=2)
        h.client.startService()
        h.endpoint.attempts[0].succeed()
        h.endpoint.attempts[1].fail(ConnectionRefusedError())
        text = h.client.stat()
        self.assertIn("1/2 open", text)
        self.assertIn("1 OPEN, 1 WAITING", text)
        self.assertIn("failed attempts 1", text)
