"""
Running the project's console scripts (C{txgetty}, C{twistd}, C{twist}) of
the venv that runs the tests as real processes, bounded in time.
"""

from __future__ import annotations

from typing import Any, Callable
import os
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from txgetty.codec import HelloCodec
from txgetty.handlers import EchoListener
from txgetty.server import Server
from txgetty.session import Session
from txgetty.tools.tap import Options


#: The directory of the console scripts of the venv running the tests.
SCRIPTS = os.path.dirname(sys.executable)
#: The console script of the venv running the tests.
TXGETTY = os.path.join(SCRIPTS, "txgetty")
#: The longest a command may run, in seconds.
WAIT = 20.0


class _Spawner:
    """
    A stand-in reactor for L{getProcessOutputAndValue} that remembers the
    processes it starts, so that a command that hangs can be killed.

    @ivar processes: the process transports started.
    """

    def __init__(self) -> None:
        """
        Start with no process.
        """
        self.processes: list[Any] = []

    def spawnProcess(self, *args: Any, **kw: Any) -> Any:
        """
        Start a process with the real reactor.

        @param args: L{IReactorProcess.spawnProcess} arguments.
        @param kw: its keyword arguments.
        @return: the process transport.
        """
        process = reactor.spawnProcess(*args, **kw)
        self.processes.append(process)
        return process

    def kill(self) -> None:
        """
        Kill every process still running.
        """
        for process in self.processes:
            if process.pid is not None:
                process.signalProcess("KILL")


async def runScript(script: str, *args: str, stdin: bytes | None = None) -> tuple[str, str, int]:
    """
    Run a console script of the venv to its end (killed after L{WAIT}
    seconds).

    @param script: its name (C{txgetty}, C{twistd}, C{twist}).
    @param args: its arguments.
    @param stdin: bytes for its standard input.
    @return: its standard output, standard error (text) and exit code.
    @raise AssertionError: it did not end in time.
    """
    spawner = _Spawner()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    d = getProcessOutputAndValue(os.path.join(SCRIPTS, script), args, env=env, reactor=spawner, stdinBytes=stdin)
    killer = reactor.callLater(WAIT, spawner.kill)

    def killed(failure: Any) -> None:
        """
        @param failure: a signal ended the command; the value is C{(out,
            err, signal)}.
        @raise AssertionError: always.
        """
        raise AssertionError(f"{script} {' '.join(args)} did not end normally: {failure.value!r}")

    try:
        out, err, code = await d.addErrback(killed)
    finally:
        if killer.active():
            killer.cancel()
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code


async def runTxgetty(*args: str, stdin: bytes | None = None) -> tuple[str, str, int]:
    """
    Run the C{txgetty} command to its end (see L{runScript}).

    @param args: its arguments.
    @param stdin: bytes for its standard input.
    @return: its standard output, standard error (text) and exit code.
    """
    return await runScript("txgetty", *args, stdin=stdin)


def parse(*argv: str) -> Options:
    """
    @param argv: command-line arguments after C{txgetty}.
    @return: the parsed options.
    """
    options = Options()
    options.parseOptions(list(argv))
    return options


class CLITestCase(TestCase):
    """
    Starts in-process servers for the command to talk to.
    """

    timeout = 60

    async def startServer(
        self,
        *,
        codec: Callable[[], Any] = HelloCodec,
        listener: Callable[[], Any] = EchoListener,
        endpoint: str = "tcp:0:interface=127.0.0.1",
        **serverArgs: Any,
    ) -> int:
        """
        Start a server; the test stops it at its end.

        @param codec: makes each session's codec.
        @param listener: makes each session's listener.
        @param endpoint: the endpoint description.
        @param serverArgs: more L{Server} arguments.
        @return: the bound port.
        """

        def newSession(session: Session) -> None:
            session.codec = codec()
            session.listener = listener()

        server = Server([endpoint], newSession, reactor=reactor, **serverArgs)
        server.startService()
        self.addCleanup(server.stopService)
        d: Deferred = server.whenListening()
        [address] = await d.addTimeout(WAIT, reactor)
        return address.port

    async def freePort(self) -> int:
        """
        @return: a loopback port nothing listens on (it just did).
        """
        server = Server(["tcp:0:interface=127.0.0.1"], lambda s: None, reactor=reactor)
        server.startService()
        [address] = await server.whenListening().addTimeout(WAIT, reactor)
        await server.stopService()
        return address.port
