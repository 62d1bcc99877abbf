"""
C{twistd txgetty --metrics}: the option, its error paths, the service it adds.
"""

from __future__ import annotations

import sys

from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from txgetty.metrics import MetricsService
from txgetty.server import Server
from txgetty.tools.tap import Options, makeService


class MetricsOptionTests(SynchronousTestCase):
    """
    The C{--metrics} option.
    """

    def test_offByDefault(self) -> None:
        """
        Without C{--metrics} no metrics service is made.
        """
        options = Options()
        options.parseOptions(["--listen", "tcp:0"])
        top = makeService(options, MemoryReactorClock())
        self.assertFalse([s for s in top if isinstance(s, MetricsService)])

    def test_serviceFirstWatchingTheServers(self) -> None:
        """
        With C{--metrics ENDPOINT} a L{MetricsService} is the first child
        (so it stops last) and watches the packet and RPC servers, each a
        readiness check.
        """
        options = Options()
        options.parseOptions(["--listen", "tcp:0", "--metrics", "tcp:0:interface=127.0.0.1", "--task-pool", "2"])
        top = makeService(options, MemoryReactorClock())
        services = list(top)
        self.assertIsInstance(services[0], MetricsService)
        metrics = services[0]
        self.assertEqual(metrics.endpoint, "tcp:0:interface=127.0.0.1")
        self.assertEqual(len(metrics.collector.rpcServers), 1)
        self.assertEqual(len([s for s in metrics.collector.servers if isinstance(s, Server)]), 2)
        self.assertEqual(len(metrics.collector.taskPools), 1)
        self.assertEqual(len(metrics.readiness.checks), 2)
        self.assertTrue(metrics.readiness.reason().startswith("starting:"))

    def test_badEndpoint(self) -> None:
        """
        A wrong endpoint string is refused with a line naming C{--metrics}.
        """
        options = Options()
        options.parseOptions(["--metrics", "nonsense:9464"])
        e = self.assertRaises(usage.UsageError, makeService, options, MemoryReactorClock())
        self.assertIn("--metrics nonsense:9464", str(e))

    def test_withoutTheExtra(self) -> None:
        """
        Without prometheus_client, C{--metrics} is refused with one line
        saying which extra to install.
        """
        saved = sys.modules.get("prometheus_client")
        sys.modules["prometheus_client"] = None  # type: ignore[assignment]  # import raises ImportError
        self.addCleanup(sys.modules.__setitem__, "prometheus_client", saved)
        e = self.assertRaises(usage.UsageError, Options().parseOptions, ["--metrics", "tcp:9464"])
        self.assertEqual(str(e), "--metrics needs prometheus_client, which is not installed: "
                                 "pip install 'txgetty[metrics]'")
