"""
docs/workers.md is true: its example runs as the page says, and its tables
of defaults and balancing constants are the code's.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty.config import DEFAULT_LISTEN_BACKLOG
from txgetty.workers import balancer, supervisor
from txgetty.workers.slot import DEFAULT_RESTART_POLICY

from ..support.processes import runTxgetty
from ..support.docs import DOCS
from ..support.workers import SupervisorProcess, processExists

DOC = DOCS / "workers.md"


def docFiles() -> dict[str, str]:
    """
    @return: the page's C{# file: NAME} code blocks, by name.
    """
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n# file: (\S+)\n(.*?)^```", text, re.S | re.M)
    return {name: code for name, code in blocks}


def tableRows(heading: str) -> dict[str, str]:
    """
    @return: the first two cells of each row of the table whose header row
        starts with C{heading}.
    """
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"| {heading}")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1]
    return rows


class ExampleTests(TestCase):
    """
    The page's example, run as it says (on ports the kernel picks).
    """

    timeout = 120

    async def test_example(self) -> None:
        """
        twistd -n -y workers.tac beside myworkers.py: two workers serve
        Calc.add (txgetty call answers 3), SIGHUP reloads both, SIGTERM drains
        and ends everything.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        for name, code in docFiles().items():
            Path(directory, name).write_text(code.replace(":8090:", ":0:").replace(":8091:", ":0:"))
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        process = SupervisorProcess({}, ["/usr/bin/setsid", twistd, "-n", "--pidfile=", "--logfile=-", "-y",
                                         "workers.tac"], cwd=directory)
        self.addCleanup(process.killGroup)
        process.spawn()
        for slot in (0, 1):
            await process.waitFor(rf"txgetty workers: worker {slot} \(pid \d+\) is ready")
        bound = re.findall(r"tcp:0:interface=127\.0\.0\.1 bound at 127\.0\.0\.1:(\d+)", "\n".join(process.lines))
        out, err, code = await runTxgetty("call", f"127.0.0.1:{bound[1]}", "Calc.add", "1", "2")
        self.assertEqual((out.strip(), code), ("3", 0), err)
        mark = len(process.lines)
        process.signal("HUP")
        await process.waitFor(r"reload done: 2 of 2 slots run new workers", after=mark)
        process.signal("TERM")
        await process.waitForEnd()
        for pid in process.workerPids():
            self.assertFalse(processExists(pid))
        await deferLater(reactor, 0, lambda: None)


class TableTests(SynchronousTestCase):
    """
    The page's tables.
    """

    def test_defaults(self) -> None:
        """
        The defaults the page gives are the code's.
        """
        rows = tableRows("`WorkerSupervisor` / `WorkerCommand` parameter")
        self.assertEqual(rows["readyTimeout"], f"{supervisor.DEFAULT_READY_TIMEOUT:g} s")
        self.assertEqual(rows["drainTimeout"], f"{supervisor.DEFAULT_DRAIN_TIMEOUT:g} s")
        self.assertEqual(rows["backlog"], str(DEFAULT_LISTEN_BACKLOG))
        policy = DEFAULT_RESTART_POLICY
        self.assertEqual(policy.factor, 2.0)
        self.assertEqual(rows["restartPolicy"], f"{policy.initialDelay:g} s, doubling, at most {policy.maxDelay:g} s, "
                                                f"jitter {policy.jitter:g}, stable after {policy.stableAfter:g} s")

    def test_balancing(self) -> None:
        """
        The balancing constants the page gives are the code's.
        """
        rows = tableRows("balancing constant")
        self.assertEqual(rows["SLACK"], f"{balancer.SLACK} connections")
        self.assertEqual(rows["SLACK_SHARE"], f"{balancer.SLACK_SHARE:g} of the mean")
        self.assertEqual(rows["SETTLE"], f"{balancer.SETTLE:g} s")
