"""
C{twistd txgetty --metrics}: the option, its error paths, the service it adds.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile

from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from txgetty.metrics import MetricsService
from txgetty.server import Server
from txgetty.tools.tap import Options, makeService
from txgetty.workers.slot import READY


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


class WorkersMetricsOptionTests(SynchronousTestCase):
    """
    C{--metrics} with C{--workers N}.
    """

    def test_supervisorServesWorkersAsk(self) -> None:
        """
        With C{--workers 2 --metrics ENDPOINT} the first child is a
        L{WorkersMetricsService} (it stops last) on ENDPOINT, ready only
        once every slot's worker is; the workers are told a private (0700)
        directory, and a worker's service serves its metrics on
        C{unix:DIRECTORY/worker-PID.sock}.
        """
        from txgetty.metrics.workers import WorkersMetricsService
        from txgetty.tools.tap import makeWorkerService

        options = Options()
        options.parseOptions(["--workers", "2", "--listen", "tcp:0", "--metrics", "tcp:0:interface=127.0.0.1"])
        top = makeService(options, MemoryReactorClock())
        metrics, supervisor = list(top)[:2]
        self.assertIsInstance(metrics, WorkersMetricsService)
        self.addCleanup(os.rmdir, metrics.directory)
        self.assertEqual(metrics.endpoint, "tcp:0:interface=127.0.0.1")
        self.assertEqual(stat.S_IMODE(os.stat(metrics.directory).st_mode), 0o700)
        self.assertEqual(supervisor.command.options["metricsDirectory"], metrics.directory)
        self.assertEqual(metrics.readiness.reason(), "starting: worker 0 is idle (2 of 2 not ready)")

        from txgetty.tools import tap

        self.patch(tap, "adoptedListeners", lambda sockets, group, tls: ["tcp:0"])  # no adopted sockets here
        worker = makeWorkerService(supervisor.command.options, None, MemoryReactorClock())
        [inWorker] = [s for s in worker if isinstance(s, MetricsService)]
        self.assertEqual(inWorker.endpoint, f"unix:{metrics.directory}/worker-{os.getpid()}.sock")

    def test_workersWithoutMetrics(self) -> None:
        """
        Without C{--metrics}, the workers are told no directory and serve
        no metrics.
        """
        options = Options()
        options.parseOptions(["--workers", "2", "--listen", "tcp:0"])
        top = makeService(options, MemoryReactorClock())
        [supervisor] = list(top)
        self.assertNotIn("metricsDirectory", supervisor.command.options)
        self.assertFalse([s for s in top if isinstance(s, MetricsService)])

    def test_workersBadEndpoint(self) -> None:
        """
        A wrong C{--metrics} endpoint with C{--workers} is refused with a
        line naming C{--metrics}, and leaves no directory behind (in a
        temporary directory of this test's own: other tests running at the
        same time make such directories too).
        """
        own = self.mktemp()
        os.makedirs(own)
        self.patch(tempfile, "tempdir", own)
        before = set(os.listdir(tempfile.gettempdir()))
        options = Options()
        options.parseOptions(["--workers", "2", "--listen", "tcp:0", "--metrics", "nonsense:9464"])
        e = self.assertRaises(usage.UsageError, makeService, options, MemoryReactorClock())
        self.assertIn("--metrics nonsense:9464", str(e))
        after = {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("txgetty-metrics-")}
        self.assertEqual(after - before, set())

    def test_workersReadyOnceRegistered(self) -> None:
        """
        With C{--workers}, C{--metrics} and C{--registry}, the supervisor's
        C{/readyz} also waits for the registration.
        """
        options = Options()
        options.parseOptions(["--workers", "2", "--listen", "tcp:0", "--metrics", "tcp:0:interface=127.0.0.1",
                              "--registry", "etcd://127.0.0.1:1"])
        top = makeService(options, MemoryReactorClock())
        metrics = list(top)[0]
        self.addCleanup(os.rmdir, metrics.directory)
        self.assertEqual(len(metrics.readiness.checks), 2)
        for slot in list(top)[1].slots:
            slot.state = READY
        self.assertIn("etcd://127.0.0.1:1", metrics.readiness.reason())
