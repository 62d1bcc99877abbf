"""
The examples as modules (C{examples/} is not a package), and the socket and
process helpers of the tests of the examples and docs: clients over real
sockets, servers on port 0, processes (scripts, twistd) and their output,
and sessions in memory.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable
import importlib.util
import os
import re
import struct
import sys

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone, ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from txgetty import Server
from txgetty.session import Session, SessionOwner
from txgetty.testing import RecordingListener, SessionPair
from txgetty.wheel import TimerWheel

from .net import WAIT, bounded, helloFrame


ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples"



def loadModule(path: Path, name: str) -> ModuleType:
    """
    Import a Python file that is not part of a package.

    @param path: the file.
    @param name: the module name to give it (not added to C{sys.modules}).
    @return: the module.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


echo_server = loadModule(EXAMPLES / "echo_server.py", "txgetty_example_echo_server")
chat_server = loadModule(EXAMPLES / "chat_server.py", "txgetty_example_chat_server")


class Collector(Protocol):
    """
    A client protocol that keeps every byte it receives and lets a test wait
    until what arrived satisfies a condition.

    @ivar data: every byte received so far.
    @ivar lostReason: the L{Failure} given to C{connectionLost}, or C{None}.
    """

    def __init__(self) -> None:
        """
        Start with nothing received.
        """
        self.data = b""
        self.lostReason: Failure | None = None
        self._waiters: list[tuple[Callable[[], bool], str, Deferred]] = []
        self._lostWaiters: list[Deferred] = []

    def dataReceived(self, data: bytes) -> None:
        """
        @param data: bytes from the server.
        """
        self.data += data
        self._check()

    def _check(self) -> None:
        """
        Fire the waits whose condition now holds.
        """
        for waiter in list(self._waiters):
            condition, _, d = waiter
            if condition():
                self._waiters.remove(waiter)
                if not d.called:
                    d.callback(self)

    def waitUntil(self, condition: Callable[[], bool], what: str) -> Deferred:
        """
        @param condition: checked now and after every received chunk.
        @param what: a description for failure messages.
        @return: a L{Deferred} firing with this protocol once C{condition()}
            holds; failing if the connection is lost first, or after L{WAIT}
            seconds.
        """
        d: Deferred = Deferred()
        if condition():
            d.callback(self)
            return d
        if self.lostReason is not None:
            d.errback(AssertionError(f"connection lost before {what}; received {self.data!r}"))
            return d
        self._waiters.append((condition, what, d))
        return bounded(d, f"{what}; received {self.data[-500:]!r} so far")

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        """
        @param reason: why the connection ended.
        """
        self.lostReason = reason
        waiters, self._waiters = self._waiters, []
        for _, what, d in waiters:
            if not d.called:
                d.errback(AssertionError(f"connection lost before {what}; received {self.data!r}"))
        lostWaiters, self._lostWaiters = self._lostWaiters, []
        for d in lostWaiters:
            d.callback(reason.value)

    def whenLost(self) -> Deferred:
        """
        @return: a L{Deferred} firing with the exception that ended the
            connection once it is gone (at once if it is).
        """
        d: Deferred = Deferred()
        if self.lostReason is not None:
            d.callback(self.lostReason.value)
        else:
            self._lostWaiters.append(d)
        return bounded(d, "the connection to close")


class HelloClient(Collector):
    """
    A client for getty's hello framing.
    """

    def send(self, *payloads: bytes) -> None:
        """
        Send payloads framed in the hello format, in one write.

        @param payloads: the payloads.
        """
        self.transport.write(b"".join(helloFrame(p) for p in payloads))

    def packets(self) -> list[bytes]:
        """
        @return: the complete payloads received so far.
        """
        out, data = [], self.data
        while len(data) >= 4:
            (n,) = struct.unpack_from("<I", data)
            if len(data) < 4 + n:
                break
            out.append(data[4:4 + n])
            data = data[4 + n:]
        return out

    def waitForPackets(self, count: int) -> Deferred:
        """
        @param count: how many payloads to wait for.
        @return: a L{Deferred} firing with this client once C{count} payloads
            arrived.
        """
        return self.waitUntil(lambda: len(self.packets()) >= count, f"{count} hello packets")


class LineClient(Collector):
    """
    A client for line protocols (the chat).
    """

    def send(self, *lines: str) -> None:
        """
        Send lines in one write.

        @param lines: the lines, without newlines.
        """
        self.transport.write("".join(line + "\n" for line in lines).encode("utf-8"))

    def lines(self) -> list[str]:
        """
        @return: the complete lines received so far, without newlines.
        """
        return self.data.decode("utf-8").split("\n")[:-1]

    def waitForLine(self, line: str) -> Deferred:
        """
        @param line: a line to wait for.
        @return: a L{Deferred} firing with this client once C{line} arrived.
        """
        return self.waitUntil(lambda: line in self.lines(), f"the line {line!r}")


def connectClient(testCase: TestCase, port: int, protocol: Collector) -> Deferred:
    """
    Connect a client to 127.0.0.1 and make sure the test closes it.

    @param testCase: the test; its cleanup disconnects the client and waits
        until the connection is gone.
    @param port: the server's port.
    @param protocol: the client protocol.
    @return: a L{Deferred} firing with C{protocol} once connected.
    """

    def connected(proto: Collector) -> Collector:
        def disconnect() -> Deferred:
            if proto.lostReason is None:
                proto.transport.loseConnection()
            return proto.whenLost()

        testCase.addCleanup(disconnect)
        return proto

    d = connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=WAIT), protocol)
    return bounded(d, f"a connection to 127.0.0.1:{port}").addCallback(connected)


@inlineCallbacks
def startServer(testCase: TestCase, newSession: Callable[[Any], Any], **kw: Any) -> Any:
    """
    Start a L{Server} on 127.0.0.1, port 0, stopped by the test's cleanup.

    @param testCase: the test.
    @param newSession: the new-session callback.
    @param kw: other L{Server} arguments.
    @return: a L{Deferred} firing with C{(server, port)}.
    """
    server = Server(["tcp:0:interface=127.0.0.1"], newSession, reactor=reactor, **kw)
    server.startService()
    testCase.addCleanup(lambda: bounded(server.stopService(), "the server to stop"))
    addresses = yield bounded(server.whenListening(), "the server to listen")
    return server, addresses[0].port


class ProcessWatcher(ProcessProtocol):
    """
    Collects a child process's output and lets a test wait for a pattern in
    it, and for the process's end.

    @ivar output: stdout and stderr so far, interleaved as they came.
    @ivar endReason: the L{Failure} given to C{processEnded}, or C{None}.
    """

    def __init__(self) -> None:
        """
        Start with no output.
        """
        self.output = b""
        self.endReason: Failure | None = None
        self._waiters: list[tuple[re.Pattern[bytes], Deferred]] = []
        self._endWaiters: list[Deferred] = []

    def outReceived(self, data: bytes) -> None:
        """
        @param data: bytes from the child's stdout.
        """
        self.output += data
        for waiter in list(self._waiters):
            pattern, d = waiter
            match = pattern.search(self.output)
            if match is not None:
                self._waiters.remove(waiter)
                if not d.called:
                    d.callback(match)

    errReceived = outReceived

    def waitForOutput(self, pattern: bytes) -> Deferred:
        """
        @param pattern: a regular expression to look for in the output.
        @return: a L{Deferred} firing with the match; failing if the process
            ends first or after L{WAIT} seconds.
        """
        regex = re.compile(pattern)
        d: Deferred = Deferred()
        match = regex.search(self.output)
        if match is not None:
            d.callback(match)
        elif self.endReason is not None:
            d.errback(AssertionError(f"the process ended without printing {pattern!r}:\n{self.output.decode()}"))
        else:
            self._waiters.append((regex, d))
        return bounded(d, f"{pattern!r} in the output of the process:\n{self.output.decode()}")

    def processEnded(self, reason: Failure) -> None:
        """
        @param reason: L{ProcessDone} or L{ProcessTerminated}.
        """
        self.endReason = reason
        waiters, self._waiters = self._waiters, []
        for pattern, d in waiters:
            if not d.called:
                d.errback(AssertionError(
                    f"the process ended without printing {pattern.pattern!r}:\n{self.output.decode()}"
                ))
        endWaiters, self._endWaiters = self._endWaiters, []
        for d in endWaiters:
            d.callback(reason.value)

    def whenEnded(self) -> Deferred:
        """
        @return: a L{Deferred} firing with the L{ProcessDone} or
            L{ProcessTerminated} exception once the process has exited (at
            once if it has).
        """
        d: Deferred = Deferred()
        if self.endReason is not None:
            d.callback(self.endReason.value)
        else:
            self._endWaiters.append(d)
        return d

    def stop(self) -> Deferred:
        """
        End the process: SIGTERM, then SIGKILL if it is still there after
        L{WAIT} seconds.

        @return: a L{Deferred} firing as L{whenEnded}'s.
        """
        if self.endReason is not None:
            return self.whenEnded()
        self.transport.signalProcess("TERM")

        def kill(failure: Failure) -> Deferred:
            if self.endReason is None:
                self.transport.signalProcess("KILL")
            return self.whenEnded()

        d = self.whenEnded().addTimeout(WAIT, reactor)
        return d.addErrback(kill)


def spawn(testCase: TestCase, argv: list[str], cwd: str, pythonPath: Iterable[str] = ()) -> ProcessWatcher:
    """
    Start a child process that the test's cleanup stops.

    @param testCase: the test.
    @param argv: the command; C{argv[0]} is an absolute path.
    @param cwd: the working directory.
    @param pythonPath: directories for C{PYTHONPATH}.
    @return: the watcher of the process.
    """
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)
    if pythonPath:
        env["PYTHONPATH"] = os.pathsep.join(pythonPath)
    watcher = ProcessWatcher()
    reactor.spawnProcess(watcher, argv[0], argv, env=env, path=cwd)
    testCase.addCleanup(watcher.stop)
    return watcher


def twistdPath() -> str:
    """
    @return: the C{twistd} script installed next to the running Python.
    """
    path = Path(sys.executable).parent / "twistd"
    if not path.exists():
        raise AssertionError(f"no twistd next to {sys.executable}")
    return str(path)


LISTENING = rb"listening on tcp:127\.0\.0\.1:(\d+)"


@inlineCallbacks
def stopAndCheck(testCase: TestCase, watcher: ProcessWatcher) -> Any:
    """
    Stop a server process with SIGTERM and check that it shut down cleanly:
    exit status 0 or death by the SIGTERM it was sent (twistd re-raises it),
    and no traceback in its output.

    @param testCase: the test.
    @param watcher: the process.
    @return: a L{Deferred} firing once checked.
    """
    reason = yield watcher.stop()
    if isinstance(reason, ProcessTerminated) and reason.signal is not None:
        testCase.assertEqual(reason.signal, 15, watcher.output.decode())
    else:
        testCase.assertIsInstance(reason, ProcessDone, watcher.output.decode())
    testCase.assertNotIn(b"Traceback", watcher.output, watcher.output.decode())


class CallbackOwner(SessionOwner):
    """
    A session owner that runs a new-session callback, as a L{Server} does.
    """

    def __init__(self, newSession: Callable[[Any], Any]) -> None:
        """
        @param newSession: the callback.
        """
        self.newSession = newSession

    def configureSession(self, session: Session) -> None:
        """
        @param session: the new session.
        """
        self.newSession(session)


def clientSession(clock: Clock, wheel: TimerWheel, codec: Any) -> Session:
    """
    @param clock: the fake clock.
    @param wheel: the wheel.
    @param codec: the client's codec.
    @return: a client session recording its events.
    """

    def configure(session: Any) -> None:
        session.codec = codec
        session.listener = RecordingListener()

    return Session(clock=clock, wheel=wheel, owner=CallbackOwner(configure))


def pairFor(newSession: Callable[[Any], Any], clock: Clock, wheel: TimerWheel, codec: Any) -> SessionPair:
    """
    Connect, in memory, a server session configured by C{newSession} to a
    recording client session.

    @param newSession: the server's new-session callback.
    @param clock: the shared fake clock.
    @param wheel: the shared wheel.
    @param codec: the client's codec.
    @return: the connected pair.
    """
    server = Session(clock=clock, wheel=wheel, owner=CallbackOwner(newSession))
    return SessionPair(server, clientSession(clock, wheel, codec), clock, wheel).connect()


def sessionThroughServer(newSession: Callable[[Any], Any]) -> tuple[Any, StringTransport, MemoryReactorClock]:
    """
    Let a real L{Server} on a fake reactor accept one connection.

    @param newSession: the server's new-session callback.
    @return: the session, its transport and the reactor.
    """
    fake = MemoryReactorClock()
    server = Server(["tcp:8090"], newSession, reactor=fake)
    server.startService()
    session = fake.tcpServers[0][1].buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport()
    session.makeConnection(transport)
    return session, transport, fake


class InMemoryRoom:
    """
    Clients connected in memory to one chat room, on one fake clock and one
    wheel; the server sessions are configured by the room's own new-session
    callback.

    @ivar room: the room.
    @ivar clock: the fake clock.
    @ivar pairs: the connected pairs, by client name.
    """

    def __init__(self, room: Any) -> None:
        """
        @param room: the room (its C{newSession} configures server sessions).
        """
        self.room = room
        self.clock = Clock()
        self.wheel = TimerWheel(self.clock, 0.1)
        self.pairs: dict[str, SessionPair] = {}

    def say(self, name: str, *lines: str) -> None:
        """
        Send lines from one client (in one write), then deliver everything.

        @param name: the client.
        @param lines: the lines.
        """
        self.pairs[name].client.writePkgs(lines)
        self.pump()

    def pump(self) -> None:
        """
        Deliver everything pending on every connection.
        """
        # A list, not a generator: every pair is pumped on every round.
        while any([pair.pump() for pair in self.pairs.values()]):  # noqa: C419
            pass

    def heard(self, name: str) -> list[str]:
        """
        @param name: a client.
        @return: every line it received, decoded.
        """
        return [m.decode("utf-8") for m in self.pairs[name].clientListener.messages]
