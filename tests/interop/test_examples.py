"""
Tests of C{examples/echo_server.py} and C{examples/chat_server.py}.

Each example is loaded from its file with importlib (C{examples/} is not a
package) and tested three ways: in memory with L{txgetty.testing} on a fake
clock; through a real L{Server} on 127.0.0.1 port 0; and as the user runs it,
as a script (C{python examples/X.py --port 0}) and under
C{twistd -n txgetty --app X:newSession} with C{PYTHONPATH=examples}.

The socket and process helpers are in L{tests.support.examples}, shared with
the tests of the docs.
"""

from __future__ import annotations

from typing import Any
import io
import os
import sys

from twisted.internet.defer import inlineCallbacks
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty import ConnectionClosedLocally, HelloCodec, LineCodec, PacketTooLargeError, ReadIdleTimeoutError
from txgetty.config import DEFAULT_READ_IDLE_TIMEOUT
from txgetty.testing import RecordingListener, SessionPair, connectedSessions
from txgetty.tools.tap import appService

from ..support.net import helloFrame as hello
from ..support.examples import (
    EXAMPLES,
    HelloClient,
    InMemoryRoom,
    LISTENING,
    LineClient,
    ROOT,
    bounded,
    chat_server,
    connectClient,
    echo_server,
    pairFor,
    sessionThroughServer,
    spawn,
    startServer,
    stopAndCheck,
    twistdPath,
)


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
