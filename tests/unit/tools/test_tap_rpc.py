"""
Tests for the RPC part of C{twistd txgetty} (L{txgetty.tools.tap}): which services
the RPC server gets.  The demo services C{Echo}, C{Ping} and C{Status}
(C{Status} shows service names and uptime) are served by default only while
the user configures nothing of their own (no C{--app}, no C{--service}, no
TLS listener), or when C{--rpc-demo} asks for them (docs/options.md,
docs/rpc.md I{Under twistd}).
"""

from __future__ import annotations

from typing import Any
import sys
import types

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from txgetty.rpc import RpcServer, frame as F
from txgetty.tools.tap import Options, makeService

from ...support.certs import testCertificates
from ...support.processes import parse
from ...support.rpc import LogCapture


DEMO = ["Echo", "Ping", "Status"]


def rpcServers(options: Options) -> list[RpcServer]:
    """
    @param options: parsed options.
    @return: the RPC servers of the service tree C{makeService} builds.
    """
    found = []

    def walk(service: Any) -> None:
        if isinstance(service, RpcServer):
            found.append(service)
        for child in getattr(service, "services", ()):
            walk(child)

    walk(makeService(options, reactor=MemoryReactorClock()))
    return found


class DemoServicesTests(SynchronousTestCase):
    """
    When the demo services are served, for every combination of the
    options that turn them off and C{--rpc-demo}.
    """

    def setUp(self) -> None:
        """
        Make a module with an --app callback and a --service class, and TLS
        files for TLS listeners.
        """
        module = types.ModuleType("txgetty_test_demo")

        class Calc:
            def add(self, a: int, b: int) -> int:
                return a + b

        module.Calc = Calc  # type: ignore[attr-defined]
        module.newSession = lambda session: None  # type: ignore[attr-defined]
        sys.modules[module.__name__] = module
        self.addCleanup(sys.modules.pop, module.__name__)
        certs = testCertificates()
        self.tls = ["--tls-key", certs.serverKey, "--tls-cert", certs.serverCert]

    def servedBy(self, *argv: str) -> list[str] | None:
        """
        @param argv: options.
        @return: the services of the RPC server they make, besides
            C{Health} (which every server has), or C{None} if they make
            none.
        """
        servers = rpcServers(parse(*argv))
        self.assertLessEqual(len(servers), 1)
        if not servers:
            return None
        names = sorted(servers[0].registry.names())
        self.assertIn("Health", names)
        names.remove("Health")
        return names

    def test_plain(self) -> None:
        """
        Plain C{twistd -n txgetty} (and with only --rpc-listen, RPC options,
        or a plain --listen) serves the demo services on
        tcp:8091:interface=127.0.0.1, as the README promises.
        """
        options = parse()
        [rpc] = rpcServers(options)
        self.assertEqual(sorted(rpc.registry.names()), sorted(DEMO + ["Health"]))
        self.assertEqual(options["rpc-listen"], ["tcp:8091:interface=127.0.0.1"])
        for argv in (["--rpc-listen", "tcp:0:interface=127.0.0.1"], ["--rpc-max-in-flight", "8"],
                     ["--listen", "tcp:0:interface=127.0.0.1"], ["--rpc-demo"]):
            self.assertEqual(self.servedBy(*argv), DEMO, argv)

    def test_turnedOff(self) -> None:
        """
        --app, --service, a tls: or wss:// --listen, or a tls: --rpc-listen
        each turn the demo services off; with --service the server serves
        only the user's services.
        """
        service = ["--service", "txgetty_test_demo:Calc"]
        app = ["--app", "txgetty_test_demo:newSession"]
        tlsListen = ["--listen", "tls:0:interface=127.0.0.1", *self.tls]
        wssListen = ["--listen", "wss://127.0.0.1:0/ws", *self.tls]
        tlsRpc = ["--rpc-listen", "tls:0:interface=127.0.0.1", *self.tls]
        for argv in (service, service + app, service + tlsListen, service + tlsRpc, service + wssListen):
            self.assertEqual(self.servedBy(*argv), ["Calc"], argv)
        for argv in (app, tlsListen, tlsRpc, wssListen, app + tlsRpc):
            self.assertIsNone(self.servedBy(*argv), argv)

    def test_askedFor(self) -> None:
        """
        --rpc-demo serves the demo services whatever else is given, beside
        the --service ones.
        """
        service = ["--service", "txgetty_test_demo:Calc"]
        for extra in ([], ["--app", "txgetty_test_demo:newSession"],
                      ["--listen", "tls:0:interface=127.0.0.1", *self.tls],
                      ["--rpc-listen", "tls:0:interface=127.0.0.1", *self.tls]):
            self.assertEqual(self.servedBy("--rpc-demo", *extra), DEMO, extra)
            self.assertEqual(self.servedBy("--rpc-demo", *service, *extra), ["Calc", *DEMO], extra)

    def test_noRpc(self) -> None:
        """
        --no-rpc serves no RPC at all, even with --rpc-demo or --service.
        """
        for argv in ([], ["--rpc-demo"], ["--service", "txgetty_test_demo:Calc"]):
            self.assertIsNone(self.servedBy("--no-rpc", *argv), argv)

    def test_clashWithDemo(self) -> None:
        """
        A --service named like a demo service is refused only when the
        demo services are served (--rpc-demo); otherwise the name is free.
        """
        self.assertEqual(self.servedBy("--service", "Echo=txgetty_test_demo:Calc"), ["Echo"])
        with self.assertRaises(UsageError) as ctx:
            parse("--rpc-demo", "--service", "Echo=txgetty_test_demo:Calc")
        self.assertIn("a service named 'Echo' is already registered", str(ctx.exception))

    def test_noServerSaysWhy(self) -> None:
        """
        When nothing is left to serve, no RPC server starts (port 8091 stays
        free) and one log line says why and what to add: at info level, or
        at warn level when --rpc-listen was given.
        """
        logs = LogCapture(self)
        self.assertIsNone(self.servedBy("--app", "txgetty_test_demo:newSession"))
        self.assertIsNone(self.servedBy("--rpc-listen", "tcp:0:interface=127.0.0.1",
                                        "--app", "txgetty_test_demo:newSession"))
        lines = logs.lines("txgetty.tools.tap")
        self.assertEqual([level for level, _ in lines], [LogLevel.info, LogLevel.warn])
        for _, text in lines:
            self.assertIn("no RPC server started: no --service is given, and the demo services Echo, Ping and "
                          "Status are off because --app is; add --service MODULE:OBJECT, or --rpc-demo", text)

    def test_documented(self) -> None:
        """
        --rpc-demo is declared like the other options and has a row in
        docs/options.md and in docs/rpc.md's twistd table.
        """
        from ...support.docs import DOCS

        self.assertIn("rpc-demo", [flag[0] for flag in Options.optFlags])
        for doc in ("options.md", "rpc.md"):
            rows = [line for line in (DOCS / doc).read_text(encoding="utf-8").splitlines()
                    if line.startswith("| `--rpc-demo` |")]
            self.assertEqual(len(rows), 1, doc)

    def test_demoMissingSaysHow(self) -> None:
        """
        Calling a demo service on a server without them answers
        NoSuchService naming how to serve them (--rpc-demo).
        """
        from ...support.rpc import FrameClient

        [rpc] = rpcServers(parse("--service", "txgetty_test_demo:Calc"))
        client = FrameClient(rpc, rpc.reactor)
        client.call(1, "Echo.echo", "hi")
        client.call(2, "Nope.echo", "hi")
        message = client.error(1)[F.ERROR_MESSAGE]
        self.assertIn("no service named 'Echo'; services: Calc, Health; Echo, Ping and Status are the demo services", message)
        self.assertIn("--rpc-demo", message)
        self.assertNotIn("demo", client.error(2)[F.ERROR_MESSAGE])
