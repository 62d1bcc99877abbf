"""
Tests for the health service every RPC server serves (C{Health.check}),
written from docs/rpc-protocol.md, "The health service".
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from txgetty.rpc import RegistrationError, RpcServer, frame as F

from ...support.docs import DOCS
from ...support.rpc import FrameClient, calcOf, calcServer


class HealthTests(SynchronousTestCase):
    """
    C{Health.check} with and without a service name, during a drain, and
    on a server without the demo services.
    """

    def setUp(self) -> None:
        """
        A started server with C{Calc} (no demo services), and a raw frame
        client.
        """
        self.clock = MemoryReactorClock()
        self.rpc = calcServer(self.clock, shutdownTimeout=30)
        self.rpc.startService()
        self.client = FrameClient(self.rpc, self.clock)

    def test_documented(self) -> None:
        """
        The page documents the call and its two answers.
        """
        text = (DOCS / "rpc-protocol.md").read_text(encoding="utf-8")
        section = text.split("## The health service", 1)[1].split("\n## ", 1)[0]
        for words in ("`Health.check`", '`{"status": "SERVING"}`', '`{"status": "NOT_SERVING"}`',
                      "`NoSuchService`", "whether or not it serves the demo"):
            self.assertIn(words, section)

    def test_serving(self) -> None:
        """
        "C{[]} or C{[""]}: the server as a whole; C{[name]}: the service
        C{name}": C{SERVING} while the server takes calls, without the
        demo services.
        """
        self.assertNotIn("Echo", self.rpc.registry.names())
        self.client.call(1, "Health.check")
        self.client.call(2, "Health.check", "")
        self.client.call(3, "Health.check", "Calc")
        self.client.call(4, "Health.check", "Health")
        self.assertEqual([self.client.result(i) for i in (1, 2, 3, 4)], [{"status": "SERVING"}] * 4)

    def test_unknownService(self) -> None:
        """
        "A name the server has no service of: an error response of type
        C{NoSuchService}, whose message names the services it has."
        """
        self.client.call(1, "Health.check", "Nope")
        error = self.client.error(1)
        self.assertEqual(error[F.ERROR_TYPE], "NoSuchService")
        self.assertIn("'Nope'", error[F.ERROR_MESSAGE])
        self.assertIn("services: Calc, Health", error[F.ERROR_MESSAGE])

    def test_notText(self) -> None:
        """
        "An argument that is not text: C{BadRequest}."
        """
        self.client.call(1, "Health.check", 3)
        self.assertEqual(self.client.error(1)[F.ERROR_TYPE], "BadRequest")

    def test_draining(self) -> None:
        """
        While the server drains, C{Health.check} is answered with
        C{NOT_SERVING} (for the server and for a service) while other new
        calls get C{ShuttingDown}.
        """
        self.client.call(1, "Calc.wait")
        stopped = self.rpc.stopService()
        self.client.call(2, "Health.check")
        self.client.call(3, "Health.check", "Calc")
        self.client.call(4, "Calc.add", 1, 2)
        self.assertEqual([self.client.result(2), self.client.result(3)], [{"status": "NOT_SERVING"}] * 2)
        self.assertEqual(self.client.error(4)[F.ERROR_TYPE], "ShuttingDown")
        self.client.call(5, "Health.check", "Nope")
        self.assertEqual(self.client.error(5)[F.ERROR_TYPE], "NoSuchService")
        calcOf(self.rpc).waiting[0].callback(1)
        self.client.pair.advance(0)
        self.successResultOf(stopped)
        self.assertFalse(self.rpc.serving)

    def test_nameTaken(self) -> None:
        """
        "Registering another service named C{Health} on an C{RpcServer}
        fails with C{RegistrationError}."
        """

        class Health:
            def check(self) -> str:
                return "mine"

        rpc = RpcServer(reactor=self.clock, endpoints=["tcp:0:interface=127.0.0.1"])
        self.assertRaises(RegistrationError, rpc.register, Health())

    def test_servingAttribute(self) -> None:
        """
        C{RpcServer.serving} is false before the server starts, true while
        it runs.
        """
        rpc = RpcServer(reactor=self.clock, endpoints=["tcp:0:interface=127.0.0.1"])
        self.assertFalse(rpc.serving)
        self.assertTrue(self.rpc.serving)
