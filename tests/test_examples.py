"""
Tests of C{examples/echo_server.py} and C{examples/chat_server.py}.

Each example is loaded from its file with importlib (C{examples/} is not a
package) and tested three ways: in memory with L{txgetty.testing} on a fake
clock; through a real L{Server} on 127.0.0.1 port 0; and as the user runs it,
as a script (C{python examples/X.py --port 0}) and under
C{twistd -n txgetty --app X:newSession} with C{PYTHONPATH=examples}.

The socket and process helpers here are also used by L{tests.test_docs}.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone, ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty import (
    ConnectionClosedLocally,
    HelloCodec,
    LineCodec,
    PacketTooLargeError,
    ReadIdleTimeoutError,
    Server,
)
from txgetty.config import DEFAULT_READ_IDLE_TIMEOUT
from txgetty.session import Session, SessionOwner
from txgetty.tools.tap import appService
from txgetty.testing import RecordingListener, SessionPair, connectedSessions
from txgetty.wheel import TimerWheel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

#: Seconds any single wait of these tests may take before it fails.
WAIT = 15.0


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


def hello(payload: bytes) -> bytes:
    """
    @param payload: a payload.
    @return: the payload framed in getty's hello format.
    """
    return struct.pack("<I", len(payload)) + payload


def bounded(d: Deferred, what: str, seconds: float = WAIT) -> Deferred:
    """
    Fail a wait that takes too long with a message saying what was awaited.

    @param d: the L{Deferred} awaited.
    @param what: a description for the failure message.
    @param seconds: the limit.
    @return: C{d}, which fails with L{AssertionError} after C{seconds}.
    """

    def timedOut(result: Any, timeout: float) -> Any:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    return d.addTimeout(seconds, reactor, onTimeoutCancel=timedOut)


# -- a client over real sockets ---------------------------------------------------


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
        self.transport.write(b"".join(hello(p) for p in payloads))

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


# -- processes ---------------------------------------------------------------------


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


# -- in-memory sessions running a real new-session callback ---------------------


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


# -- the echo example ----------------------------------------------------------------


class EchoUnitTests(SynchronousTestCase):
    """
    examples/echo_server.py in memory.
    """

    def test_echoesInOrder(self) -> None:
        """
        The echo listener writes every packet back, in order, also when the
        packets arrive in 3-byte pieces.
        """
        pair = connectedSessions(echo_server.ECHO, RecordingListener(), HelloCodec())
        payloads = [b"one", b"", b"three" * 100, bytes(range(256))]
        pair.client.writePkgs(payloads)
        pair.pump(chunkSize=3)
        self.assertEqual(pair.clientListener.messages, payloads)
        self.assertEqual(pair.server.packetsWritten, 4)

    def test_newSessionDefaultsToHello(self) -> None:
        """
        Run by a server that set no codec (the script, a .tac), newSession
        gives the session getty's hello framing and the echo listener.
        """
        session, transport, _ = sessionThroughServer(echo_server.newSession)
        self.assertIs(session.listener, echo_server.ECHO)
        session.dataReceived(hello(b"ping"))
        self.assertEqual(transport.value(), hello(b"ping"))
        session.connectionLost(Failure(ConnectionDone()))

    def test_newSessionKeepsTwistdCodec(self) -> None:
        """
        Under twistd (whose --app wrapper sets the --codec codec first),
        newSession keeps that codec: with --codec line, lines are echoed.
        """
        session, transport, _ = sessionThroughServer(appService(LineCodec(), echo_server.newSession))
        session.dataReceived(b"first\r\nsecond\n")
        self.assertEqual(transport.value(), b"first\nsecond\n")
        session.connectionLost(Failure(ConnectionDone()))

    def test_onCloseLogsStat(self) -> None:
        """
        When a session ends, the echo listener logs its stat() line and the
        close reason.
        """
        events: list[dict] = []
        self.patch(echo_server.log, "observer", events.append)
        pair = connectedSessions(echo_server.ECHO, RecordingListener(), HelloCodec())
        pair.client.writePkg(b"x")
        pair.pump()
        pair.client.close()
        pair.pump()
        closing = [e for e in events if "closed" in e["log_format"]]
        self.assertEqual(len(closing), 1)
        self.assertIn("read 1 pkgs/5 B", closing[0]["stat"])
        self.assertIn("cleanly", closing[0]["why"])

    def test_arguments(self) -> None:
        """
        The script defaults to 127.0.0.1:8090 in hello framing, and refuses
        an unknown codec with argparse's usage error.
        """
        args = echo_server.parseArguments([])
        self.assertEqual((args.port, args.interface, args.codec), (8090, "127.0.0.1", "hello"))
        self.assertEqual(echo_server.parseArguments(["--port", "0", "--codec", "line"]).codec, "line")
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit):
            echo_server.parseArguments(["--codec", "morse"])
        self.assertIn("unknown codec 'morse'", stderr.getvalue())


class EchoSocketTests(TestCase):
    """
    examples/echo_server.py over real sockets on 127.0.0.1.
    """

    timeout = 60

    @inlineCallbacks
    def test_server(self) -> Any:
        """
        A Server running the example's newSession echoes pipelined packets in
        order to two clients; one client leaving closes only its session,
        cleanly.
        """
        server, port = yield startServer(self, echo_server.newSession)
        first = yield connectClient(self, port, HelloClient())
        second = yield connectClient(self, port, HelloClient())
        first.send(b"a", b"bb", b"ccc")
        second.send(b"x" * 100_000)
        yield first.waitForPackets(3)
        yield second.waitForPackets(1)
        self.assertEqual(first.packets(), [b"a", b"bb", b"ccc"])
        self.assertEqual(second.packets(), [b"x" * 100_000])
        self.assertEqual(len(server.sessions()), 2)
        [firstSession] = [
            s for s in server.sessions() if s.remoteAddress.port == first.transport.getHost().port
        ]
        first.transport.loseConnection()
        yield bounded(firstSession.whenClosed(), "the server session to close")
        self.assertEqual(firstSession.state, "CLOSED")
        self.assertEqual(firstSession.closeReason.type, ConnectionDone)
        second.send(b"still here")
        yield second.waitForPackets(2)

    @inlineCallbacks
    def test_script(self) -> Any:
        """
        C{python examples/echo_server.py --port 0} prints the bound address,
        echoes in hello framing, and on SIGTERM closes its sessions and exits
        cleanly.
        """
        watcher = spawn(
            self, [sys.executable, str(EXAMPLES / "echo_server.py"), "--port", "0"], cwd=str(ROOT)
        )
        match = yield watcher.waitForOutput(rb"echo server listening on tcp:127\.0\.0\.1:(\d+)")
        client = yield connectClient(self, int(match.group(1)), HelloClient())
        client.send(b"hello", b"getty")
        yield client.waitForPackets(2)
        self.assertEqual(client.packets(), [b"hello", b"getty"])
        yield stopAndCheck(self, watcher)
        reason = yield client.whenLost()
        self.assertIsInstance(reason, ConnectionDone)

    @inlineCallbacks
    def test_twistd(self) -> Any:
        """
        C{PYTHONPATH=examples twistd -n txgetty --app echo_server:newSession
        --codec line} serves the example with twistd's codec.
        """
        watcher = spawn(
            self,
            [twistdPath(), "-n", "--pidfile=", "txgetty", "--rpc-listen", "tcp:0:interface=127.0.0.1", "--app", "echo_server:newSession",
             "--codec", "line", "--listen", "tcp:0:interface=127.0.0.1"],
            cwd=self._tempDir(),
            pythonPath=[str(EXAMPLES)],
        )
        match = yield watcher.waitForOutput(LISTENING)
        client = yield connectClient(self, int(match.group(1)), LineClient())
        client.send("one", "two")
        yield client.waitForLine("two")
        self.assertEqual(client.lines(), ["one", "two"])
        yield stopAndCheck(self, watcher)

    def _tempDir(self) -> str:
        """
        @return: a new empty directory for a child process to run in.
        """
        path = self.mktemp()
        os.makedirs(path)
        return path


# -- the chat example ----------------------------------------------------------------


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


class ChatHarness(InMemoryRoom):
    """
    An L{InMemoryRoom} around L{chat_server.ChatRoom}.
    """

    def __init__(self, **roomArguments: Any) -> None:
        """
        @param roomArguments: arguments for L{chat_server.ChatRoom}.
        """
        super().__init__(chat_server.ChatRoom(**roomArguments))

    def connect(self, name: str) -> SessionPair:
        """
        Connect a client without choosing a nickname.

        @param name: the client's name in this harness.
        @return: its pair.
        """
        pair = self.pairs[name] = pairFor(self.room.newSession, self.clock, self.wheel, LineCodec())
        self.pump()
        return pair

    def join(self, nick: str) -> SessionPair:
        """
        Connect a client and choose the nickname C{nick}.

        @param nick: the nickname (also the client's name here).
        @return: its pair.
        """
        pair = self.connect(nick)
        self.say(nick, nick)
        return pair

    def advance(self, seconds: float) -> None:
        """
        Move the fake clock, then deliver everything.

        @param seconds: how far.
        """
        self.clock.advance(seconds)
        self.pump()

    def events(self, name: str) -> list[str]:
        """
        @param name: a client.
        @return: the names of its client session's events.
        """
        return self.pairs[name].clientListener.names()


class ChatUnitTests(SynchronousTestCase):
    """
    examples/chat_server.py in memory, several clients on one fake clock.
    """

    def test_newSession(self) -> None:
        """
        The room's newSession sets line framing (LineCodec to read, the
        unlimited LineWriter to write), the room as listener, the line limit
        as maxMsgLen and, when asked, the idle timeout; without one it leaves
        the session's readIdleTimeout alone.
        """
        room = chat_server.ChatRoom(maxLineLength=10, idleTimeout=30)
        session, transport, _ = sessionThroughServer(room.newSession)
        self.assertIsInstance(session.reader, LineCodec)
        self.assertIsInstance(session.writer, chat_server.LineWriter)
        self.assertIs(session.listener, room)
        self.assertEqual((session.maxMsgLen, session.readIdleTimeout), (10, 30.0))
        self.assertEqual(transport.value(), b"* welcome to the txgetty chat; send your nickname\n")
        session.connectionLost(Failure(ConnectionDone()))
        plain, _, _ = sessionThroughServer(chat_server.ChatRoom().newSession)
        self.assertEqual((plain.maxMsgLen, plain.readIdleTimeout), (512, DEFAULT_READ_IDLE_TIMEOUT))
        self.assertIs(chat_server.newSession.__self__, chat_server.room)

    def test_joinAndBroadcast(self) -> None:
        """
        The first line is the nickname; the newcomer learns who is here, the
        others get a join notice, and a line is said to everybody but its
        author.
        """
        chat = ChatHarness()
        chat.join("alice")
        chat.join("bob")
        chat.join("carol")
        chat.say("alice", "hi all")
        self.assertEqual(chat.heard("alice"), [
            "* welcome to the txgetty chat; send your nickname",
            "* you are alice; here: nobody else",
            "* bob joined",
            "* carol joined",
        ])
        self.assertEqual(chat.heard("bob")[1:], ["* you are bob; here: alice", "* carol joined", "<alice> hi all"])
        self.assertEqual(chat.heard("carol")[1:], ["* you are carol; here: alice, bob", "<alice> hi all"])

    def test_broadcastOrder(self) -> None:
        """
        Lines pipelined by several senders reach every other member in the
        order the server read them.
        """
        chat = ChatHarness()
        for nick in ("alice", "bob", "carol"):
            chat.join(nick)
        chat.pairs["alice"].client.writePkgs([f"a{i}" for i in range(20)])
        chat.pairs["bob"].client.writePkgs([f"b{i}" for i in range(20)])
        chat.pump()
        said = [line for line in chat.heard("carol") if line.startswith("<")]
        self.assertEqual(said, [f"<alice> a{i}" for i in range(20)] + [f"<bob> b{i}" for i in range(20)])
        self.assertEqual([line for line in chat.heard("bob") if line.startswith("<")],
                         [f"<alice> a{i}" for i in range(20)])

    def test_who(self) -> None:
        """
        /who lists the members in order of arrival, without clients that
        have not chosen a nickname yet.
        """
        chat = ChatHarness()
        chat.join("alice")
        chat.connect("lurker")
        chat.join("bob")
        chat.say("bob", "/who")
        self.assertEqual(chat.heard("bob")[-1], "* here: alice, bob")

    def test_nicknames(self) -> None:
        """
        Malformed and taken nicknames are refused with a reason and can be
        retried; /nick renames and tells the others.
        """
        chat = ChatHarness()
        chat.join("alice")
        chat.connect("b")
        chat.say("b", "two words", "alice", "bob")
        self.assertEqual(chat.heard("b")[1:], [
            "* a nickname is 1 to 20 letters, digits, _ or -; try again",
            "* alice is taken; try another nickname",
            "* you are bob; here: alice",
        ])
        chat.say("b", "/nick alice", "/nick robert")
        self.assertEqual(chat.heard("b")[-2:], ["* alice is taken; try another nickname", "* you are now robert"])
        self.assertEqual(chat.heard("alice")[-2:], ["* bob joined", "* bob is now robert"])
        chat.say("alice", "/who", "/dance")
        self.assertEqual(chat.heard("alice")[-2:], [
            "* here: alice, robert",
            "* unknown command /dance; commands: /nick NAME, /who, /quit",
        ])

    def test_leaveOnDisconnect(self) -> None:
        """
        A client that disconnects is announced to the others and no longer
        listed by /who; the client that never chose a nickname leaves
        silently.
        """
        chat = ChatHarness()
        chat.join("alice")
        chat.join("bob")
        chat.connect("lurker")
        chat.pairs["bob"].client.close()
        chat.pairs["lurker"].client.close()
        chat.pump()
        chat.say("alice", "/who")
        self.assertEqual(chat.heard("alice")[-3:], ["* bob joined", "* bob left", "* here: alice"])
        self.assertEqual(chat.pairs["bob"].server.state, "CLOSED")
        self.assertEqual(list(chat.room.members.values()), ["alice"])

    def test_quit(self) -> None:
        """
        /quit says bye, closes the session from the server side, and the
        others see a leave notice.
        """
        chat = ChatHarness()
        chat.join("alice")
        chat.join("bob")
        chat.say("bob", "/quit")
        self.assertEqual(chat.heard("bob")[-1], "* bye")
        self.assertEqual(chat.events("bob")[-1], "close")
        self.assertTrue(chat.pairs["bob"].server.closeReason.check(ConnectionClosedLocally))
        self.assertEqual(chat.heard("alice")[-1], "* bob left")

    def test_overlongLine(self) -> None:
        """
        A line longer than the room's limit is refused by maxMsgLen: the
        sender's session closes with PacketTooLargeError, the others are
        told why, and shorter lines still work for them.
        """
        chat = ChatHarness(maxLineLength=64)
        chat.join("alice")
        chat.join("bob")
        chat.say("bob", "x" * 64)
        chat.say("bob", "y" * 65)
        bob = chat.pairs["bob"].server
        self.assertTrue(bob.closeReason.check(PacketTooLargeError))
        self.assertEqual(chat.events("bob")[-1], "close")
        self.assertEqual(chat.heard("alice")[-2:], ["<bob> " + "x" * 64, "* bob left (line longer than 64 bytes)"])
        chat.join("carol")
        chat.say("carol", "z" * 64)
        self.assertEqual(chat.heard("alice")[-1], "<carol> " + "z" * 64)

    def test_overlongLineWithoutNewline(self) -> None:
        """
        More than maxMsgLen bytes without a newline are refused before the
        line ends.
        """
        chat = ChatHarness(maxLineLength=64)
        chat.join("alice")
        chat.join("bob")
        chat.pairs["bob"].client.writeBytes(b"y" * 200)
        chat.pump()
        self.assertTrue(chat.pairs["bob"].server.closeReason.check(PacketTooLargeError))
        self.assertEqual(chat.heard("alice")[-1], "* bob left (line longer than 64 bytes)")

    def test_idleKick(self) -> None:
        """
        With idleTimeout, a member silent for that long is closed and the
        others are told why; a member who spoke recently stays.
        """
        chat = ChatHarness(idleTimeout=30)
        chat.join("alice")
        chat.join("bob")
        chat.advance(20)
        chat.say("alice", "still here")
        chat.advance(10.2)
        self.assertTrue(chat.pairs["bob"].server.closeReason.check(ReadIdleTimeoutError))
        self.assertEqual(chat.heard("alice")[-1], "* bob left (idle for too long)")
        self.assertEqual(chat.pairs["alice"].server.state, "OPEN")
        chat.advance(20)
        self.assertEqual(chat.pairs["alice"].server.state, "CLOSED")

    def test_arguments(self) -> None:
        """
        The script's options have their documented defaults and refuse
        impossible values.
        """
        args = chat_server.parseArguments([])
        self.assertEqual((args.port, args.interface, args.max_line, args.idle_timeout), (8090, "127.0.0.1", 512, 0.0))
        self.patch(sys, "stderr", io.StringIO())
        for bad in (["--max-line", "0"], ["--idle-timeout", "-1"]):
            with self.assertRaises(SystemExit):
                chat_server.parseArguments(bad)


class ChatSocketTests(TestCase):
    """
    examples/chat_server.py over real sockets on 127.0.0.1.
    """

    timeout = 60

    @inlineCallbacks
    def join(self, port: int, nick: str, others: list[LineClient]) -> Any:
        """
        Connect a client, choose a nickname, and wait until the members
        already there have seen the join notice.

        @param port: the server's port.
        @param nick: the nickname.
        @param others: the clients already in the room.
        @return: a L{Deferred} firing with the new client.
        """
        client = yield connectClient(self, port, LineClient())
        yield client.waitForLine("* welcome to the txgetty chat; send your nickname")
        client.send(nick)
        yield client.waitUntil(lambda: any(line.startswith("* you are ") for line in client.lines()), "the join")
        for other in others:
            yield other.waitForLine(f"* {nick} joined")
        return client

    @inlineCallbacks
    def test_server(self) -> Any:
        """
        Three clients on a real Server running a room: broadcast in order,
        /who, a leave notice when a client disconnects, and an over-long
        line that closes only its sender's connection.
        """
        room = chat_server.ChatRoom(maxLineLength=128)
        _, port = yield startServer(self, room.newSession)
        alice = yield self.join(port, "alice", [])
        bob = yield self.join(port, "bob", [alice])
        carol = yield self.join(port, "carol", [alice, bob])

        alice.send("one", "two", "three")
        for client in (bob, carol):
            yield client.waitForLine("<alice> three")
            self.assertEqual(client.lines()[-3:], ["<alice> one", "<alice> two", "<alice> three"])

        bob.send("/who")
        yield bob.waitForLine("* here: alice, bob, carol")

        carol.transport.loseConnection()
        yield alice.waitForLine("* carol left")
        yield bob.waitForLine("* carol left")

        alice.send("a" * 129)
        reason = yield alice.whenLost()
        self.assertIsInstance(reason, ConnectionDone)
        yield bob.waitForLine("* alice left (line longer than 128 bytes)")
        bob.send("/who")
        yield bob.waitForLine("* here: bob")

    @inlineCallbacks
    def test_script(self) -> Any:
        """
        C{python examples/chat_server.py --port 0 --max-line 16} serves a
        room with that line limit, and exits cleanly on SIGTERM after closing
        its clients.
        """
        watcher = spawn(
            self,
            [sys.executable, str(EXAMPLES / "chat_server.py"), "--port", "0", "--max-line", "16"],
            cwd=str(ROOT),
        )
        match = yield watcher.waitForOutput(rb"chat server listening on tcp:127\.0\.0\.1:(\d+)")
        port = int(match.group(1))
        alice = yield self.join(port, "alice", [])
        bob = yield self.join(port, "bob", [alice])
        bob.send("exactly 16 bytes")
        yield alice.waitForLine("<bob> exactly 16 bytes")
        bob.send("seventeen bytes!!")
        yield alice.waitForLine("* bob left (line longer than 16 bytes)")
        yield stopAndCheck(self, watcher)
        yield alice.whenLost()

    @inlineCallbacks
    def test_twistd(self) -> Any:
        """
        C{PYTHONPATH=examples twistd -n txgetty --app chat_server:newSession}
        serves the module's room (whatever --codec says) with twistd's
        --read-idle-timeout.
        """
        cwd = self.mktemp()
        os.makedirs(cwd)
        watcher = spawn(
            self,
            [twistdPath(), "-n", "--pidfile=", "txgetty", "--rpc-listen", "tcp:0:interface=127.0.0.1", "--app", "chat_server:newSession",
             "--listen", "tcp:0:interface=127.0.0.1", "--read-idle-timeout", "600"],
            cwd=cwd,
            pythonPath=[str(EXAMPLES)],
        )
        match = yield watcher.waitForOutput(LISTENING)
        port = int(match.group(1))
        alice = yield self.join(port, "alice", [])
        bob = yield self.join(port, "bob", [alice])
        alice.send("hello bob", "/who")
        yield bob.waitForLine("<alice> hello bob")
        yield alice.waitForLine("* here: alice, bob")
        yield stopAndCheck(self, watcher)
