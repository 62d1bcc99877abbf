"""
What sessions on real transports (TCP, UDP, TLS) log when they fail: one
line or one traceback per failure.
"""

from __future__ import annotations

from typing import Any
import gc

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import TestCase

from txgetty.codec import HelloCodec
from txgetty.handlers import EventListener
from txgetty.taskpool import TaskPool
from txgetty.testing import sessionOnStringTransport

from ..support.net import helloFrames as hello
from ..support.logs import Raising, assertLoggedOnce, captureEvents, failureEvents
from ..support.net import ServerHarness, bounded, connectClient, helloFrame
from ..support.transports import startTxClient, udpPeer, waitUntil


HELLO = HelloCodec()


LISTENER = f"{Raising.__module__}.Raising"


class TransportLoggingTests(TestCase):
    """
    The same rule over real loopback sockets: TCP with a task pool, UDP,
    WebSocket, and a client session.
    """

    def setUp(self) -> None:
        self.events = captureEvents(self)

    async def raisingServer(self, endpoint: str, **serverArgs: Any) -> tuple[ServerHarness, Any]:
        """
        @param endpoint: the listener.
        @return: a started server whose sessions raise in onMessage, and
            its address.
        """

        def raising(session: Any) -> None:
            session.listener = Raising("onMessage")

        harness = ServerHarness(self, [endpoint], perSession=[raising] * 5, **serverArgs)
        [address] = await harness.start()
        return harness, address

    async def waitForFailure(self, exceptionType: type[BaseException]) -> None:
        """
        Wait until a failure of that type was logged, then a little longer
        (for a second one that must not come).
        """
        await waitUntil(lambda: failureEvents(self.events, exceptionType), "the failure to be logged")
        settle: Deferred = Deferred()
        reactor.callLater(0.2, settle.callback, None)
        await settle
        gc.collect()

    async def test_tcpTaskPool(self) -> None:
        """
        In a task pool's worker thread (ordered, then unordered), onMessage
        raising is logged once with its traceback and fields.
        """
        for ordered in (True, False):
            del self.events[:]
            pool = TaskPool(2, ordered=ordered, reactor=reactor)
            pool.startService()
            self.addCleanup(lambda p=pool: bounded(p.stopService(), "the pool to stop"))
            harness, address = await self.raisingServer("tcp:0:interface=127.0.0.1", taskPool=pool)
            client = await connectClient(self, address)
            client.sendPackets([b"x"])
            await bounded(client.whenLost(), "the session to close")
            await self.waitForFailure(KeyError)
            assertLoggedOnce(self, self.events, KeyError, callback="onMessage", listener=LISTENER,
                             session=harness.sessions[0])
            await harness.stop()

    async def test_udp(self) -> None:
        """
        A UDP session's onMessage raising is logged once, with the peer's
        UDP address.
        """
        harness, address = await self.raisingServer("udp:0:interface=127.0.0.1")
        peer = udpPeer(self)
        peer.sendTo(helloFrame(b"x"), address.port)
        await self.waitForFailure(KeyError)
        event = assertLoggedOnce(self, self.events, KeyError, callback="onMessage")
        self.assertTrue(event["peer"].startswith("udp:127.0.0.1:"), event["peer"])

    async def test_webSocket(self) -> None:
        """
        A WebSocket session's onMessage raising is logged once.
        """
        harness, address = await self.raisingServer("ws://127.0.0.1:0/")
        client, recorder = startTxClient(self, f"ws://127.0.0.1:{address.port}/")
        session = await bounded(client.whenConnected(), "the WebSocket client")
        session.writePkg(b"x")
        await self.waitForFailure(KeyError)
        event = assertLoggedOnce(self, self.events, KeyError, callback="onMessage")
        self.assertEqual(event["session"].name, "ws-session")

    async def test_clientSession(self) -> None:
        """
        A client session's onMessage raising is logged once.
        """
        harness = ServerHarness(self, ["tcp:0:interface=127.0.0.1"])
        [address] = await harness.start()
        client, _ = startTxClient(self, f"tcp:127.0.0.1:{address.port}", listener=Raising("onMessage"))
        session = await bounded(client.whenConnected(), "the client session")
        session.writePkg(b"echo me")
        await self.waitForFailure(KeyError)
        assertLoggedOnce(self, self.events, KeyError, callback="onMessage", session=session)

    def test_succeedIsFine(self) -> None:
        """
        (Sanity) an already-fired Deferred from onMessage logs nothing.
        """

        class Quick(EventListener):
            def onMessage(self, session: Any, pkg: Any) -> Deferred:
                return succeed(None)

        session, _ = sessionOnStringTransport(Quick(), HELLO)
        session.dataReceived(hello(b"1"))
        self.assertEqual(failureEvents(self.events, BaseException), [])
