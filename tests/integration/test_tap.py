"""
C{twistd -n txgetty} as a process: what it says when it cannot listen.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from ..support.processes import runScript


class ListenFailureProcessTests(TestCase):
    """
    C{twistd -n txgetty} and C{twist txgetty} on a port that is taken (the
    test holds it): exit status 1, one line, no traceback.
    """

    timeout = 60

    def takenPort(self) -> int:
        """
        @return: a port on 127.0.0.1 that this test listens on.
        """
        import socket

        held = socket.socket()
        held.bind(("127.0.0.1", 0))
        held.listen()
        self.addCleanup(held.close)
        return held.getsockname()[1]

    async def test_twistdPortInUse(self) -> None:
        """
        twistd -n: the packet listener's port is taken.
        """
        port = self.takenPort()
        out, err, code = await runScript("twistd", "-n", "--pidfile=", "txgetty", "--no-rpc",
                                         "--listen", f"tcp:{port}:interface=127.0.0.1")
        self.assertEqual(code, 1, out + err)
        text = out + err
        self.assertNotIn("Traceback", text)
        [line] = [t for t in text.splitlines() if "cannot listen" in t]
        self.assertIn(f"cannot listen on tcp:{port}:interface=127.0.0.1: port {port} is already in use", line)

    async def test_twistRPCPortInUse(self) -> None:
        """
        twist: the RPC port is taken; the line names --rpc-listen and
        --no-rpc.
        """
        port = self.takenPort()
        out, err, code = await runScript("twist", "txgetty", "--listen", "tcp:0:interface=127.0.0.1",
                                         "--rpc-listen", f"tcp:{port}:interface=127.0.0.1")
        self.assertEqual(code, 1, out + err)
        self.assertNotIn("Traceback", out + err)
        self.assertEqual(err.strip().count("\n"), 0, err)
        self.assertIn(f"cannot serve RPC on tcp:{port}:interface=127.0.0.1", err)
        self.assertIn("--rpc-listen", err)
        self.assertIn("--no-rpc", err)

    async def test_twistdBadOption(self) -> None:
        """
        A bad option value ends twistd with status 1, its last line naming
        the option (twistd prints its help above it).
        """
        out, err, code = await runScript("twistd", "-n", "--pidfile=", "txgetty", "--cron-period", "abc")
        self.assertEqual(code, 1)
        last = (out + err).strip().splitlines()[-1]
        self.assertIn("--cron-period takes a number of seconds, more than 0, got 'abc'", last)
