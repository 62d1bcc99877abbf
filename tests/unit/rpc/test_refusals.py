"""
Tests for L{txgetty.rpc.refusals}: the order of docs/rpc-protocol.md,
I{Refusals}, and the words of each refusal.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from txgetty.rpc import frame as F
from txgetty.rpc.refusals import refusalHead
from txgetty.rpc.serializers import JSON
from txgetty.rpc.services import ServiceRegistry


class Calc:
    """
    A service.
    """

    def add(self, a: int, b: int) -> int:
        return a + b


class RefusalHeadTests(SynchronousTestCase):
    """
    L{refusalHead}.
    """

    def setUp(self) -> None:
        self.registry = ServiceRegistry()
        self.registry.register(Calc())

    def refuse(self, head: dict[str, str], *, calls: Any = (), draining: bool = False, maxInFlight: int = 10,
               type: int = F.REQUEST, rid: int = 7) -> tuple[str, str]:
        """
        @return: the error type and message refusing a request with C{head}.
        """
        error = refusalHead(self.registry, F.Frame(type, rid, head, b"[]", JSON), calls, draining=draining,
                            healthCheck=self.registry.lookup("Calc", "add"), maxInFlight=maxInFlight)
        return error[F.ERROR_TYPE], error[F.ERROR_MESSAGE]

    def test_orderShuttingDownFirst(self) -> None:
        """
        A draining server says C{ShuttingDown} before anything else, even
        for a call that would also be busy and unknown.
        """
        self.assertEqual(self.refuse({}, calls={1, 2}, draining=True, maxInFlight=1)[0], "ShuttingDown")

    def test_healthCheckWhileDraining(self) -> None:
        """
        The health check (here C{Calc.add} stands for it) is not refused
        C{ShuttingDown} while the server drains.
        """
        head = {"service": "Calc", "method": "add", F.TIMEOUT_MS: "x"}
        self.assertEqual(self.refuse(head, draining=True)[0], "BadRequest")

    def test_busyBeforeBadRequest(self) -> None:
        """
        A full connection answers C{ServerBusy} (code C{busy}), naming
        maxInFlight, before looking at the head.
        """
        kind, message = self.refuse({}, calls={1, 2}, maxInFlight=2)
        self.assertEqual((kind, message), ("ServerBusy", "2 calls of this connection are in flight (maxInFlight); "
                                                        "retry later"))

    def test_duplicateId(self) -> None:
        """
        A request id already in flight is a C{BadRequest}; a oneway's id is
        not checked.
        """
        head = {"service": "Calc", "method": "nope"}
        self.assertEqual(self.refuse(head, calls={7})[0], "BadRequest")
        self.assertEqual(self.refuse(head, calls={7}, type=F.ONEWAY)[0], "NoSuchMethod")

    def test_missingOrEmptyNames(self) -> None:
        """
        A missing or empty service or method entry is a C{BadRequest} that
        says which, and whether it is missing or empty.
        """
        self.assertIn("'service' is missing", self.refuse({"method": "add"})[1])
        self.assertIn("'method' is empty", self.refuse({"service": "Calc", "method": ""})[1])

    def test_noSuchServiceListsServices(self) -> None:
        """
        An unknown service is C{NoSuchService} listing those there are; a
        demo service's name adds how to get the demo services.
        """
        kind, message = self.refuse({"service": "Nope", "method": "x"})
        self.assertEqual((kind, message), ("NoSuchService", "no service named 'Nope'; services: Calc"))
        self.assertIn("demo services", self.refuse({"service": "Echo", "method": "echo"})[1])

    def test_noSuchMethodListsMethods(self) -> None:
        """
        An unknown method is C{NoSuchMethod} listing the service's methods.
        """
        self.assertEqual(self.refuse({"service": "Calc", "method": "mul"}),
                         ("NoSuchMethod", "service 'Calc' has no method 'mul'; methods: add"))

    def test_badDeadline(self) -> None:
        """
        Otherwise the deadline is what is wrong: the message says what a
        timeout-ms looks like.
        """
        kind, message = self.refuse({"service": "Calc", "method": "add", F.TIMEOUT_MS: "soon"})
        self.assertEqual(kind, "BadRequest")
        self.assertIn("timeout-ms 'soon' is not a deadline", message)
