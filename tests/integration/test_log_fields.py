"""
The stable fields of txgetty's log events (docs/observability.md, "Logs"),
captured with a log observer: a session over real TCP that opens, fails in
its listener and closes, and RPC calls that fail (with and without trace
context).
"""

from __future__ import annotations

import json

from twisted.internet import reactor
from twisted.logger import eventAsJSON
from twisted.trial.unittest import TestCase

from txgetty.rpc import RemoteError, RpcServer, rpcmethod

from ..support.logs import Raising, captureEvents
from ..support.logscan import documentedFields
from ..support.net import ServerHarness, bounded, connectClient
from ..support.rpc import startClient, startServer
from ..support.transports import waitUntil

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
VALID = f"00-{TRACE}-00f067aa0ba902b7-01"


class Broken:
    """
    An RPC service that fails.
    """

    @rpcmethod
    def bug(self) -> None:
        """
        @raise KeyError: always (a bug: logged with its traceback).
        """
        raise KeyError("missing")


class LogFieldTests(TestCase):
    """
    Every event checked here carries the documented fields.
    """

    timeout = 60

    def setUp(self) -> None:
        self.events = captureEvents(self)

    async def test_session(self) -> None:
        """
        A session whose listener raises: the event has C{session},
        C{peer}, C{listener}, C{reason} (and C{callback}, C{error},
        C{outcome}), and renders as JSON.
        """
        def raising(session: object) -> None:
            session.listener = Raising("onMessage")  # type: ignore[attr-defined]

        harness = ServerHarness(self, ["tcp:0:interface=127.0.0.1"], perSession=[raising])
        [address] = await harness.start()
        client = await connectClient(self, address)
        client.sendPackets([b"x"])
        await bounded(client.whenLost(), "the session to close")
        await waitUntil(lambda: [e for e in self.events if e.get("callback") == "onMessage"], "the event")
        [event] = [e for e in self.events if e.get("callback") == "onMessage"]
        self.assertLessEqual({"session", "peer", "listener", "reason", "callback", "error", "outcome"}, set(event))
        self.assertLessEqual({"session", "peer", "listener", "reason"}, set(documentedFields()))
        self.assertIs(event["session"], harness.sessions[0])
        self.assertTrue(event["peer"].startswith("tcp:127.0.0.1:"), event["peer"])
        self.assertEqual(event["listener"], f"{Raising.__module__}.Raising")
        self.assertEqual(event["reason"], f"KeyError: {event['why']}")
        self.assertEqual(event["log_namespace"], "txgetty.session")
        self.assertEqual(json.loads(eventAsJSON(event))["reason"], event["reason"])
        self.flushLoggedErrors(KeyError)
        await harness.stop()

    async def test_rpcCall(self) -> None:
        """
        A failing RPC call: the event has C{service}, C{method},
        C{requestId}, C{traceId} (C{None} without trace context),
        C{session}, C{peer} and C{reason}.
        """
        rpc = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor)
        rpc.register(Broken())
        client = startClient(self, await startServer(self, rpc))
        for traceparent, traceId in ((VALID, TRACE), (None, None)):
            del self.events[:]
            with self.assertRaises(RemoteError):
                await client.call("Broken.bug", traceparent=traceparent)
            [event] = [e for e in self.events if e.get("log_namespace") == "txgetty.rpc.server"]
            self.assertEqual((event["service"], event["method"], event["traceId"]), ("Broken", "bug", traceId))
            self.assertIsInstance(event["requestId"], int)
            self.assertEqual(event["reason"], "KeyError: 'missing'")
            self.assertTrue(event["peer"].startswith("tcp:127.0.0.1:"), event["peer"])
            self.assertIn("session", event)
            self.assertEqual(json.loads(eventAsJSON(event))["traceId"], traceId)
        self.assertLessEqual({"service", "method", "requestId", "traceId", "session", "peer", "reason"},
                             set(documentedFields()))
        self.flushLoggedErrors(KeyError)
