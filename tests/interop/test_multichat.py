"""
Tests of C{examples/multichat.py} and its browser page C{examples/web/}.

The example is loaded from its file (C{examples/} is not a package) and
tested in memory with L{txgetty.testing} on a fake clock, then over real
sockets on 127.0.0.1: one room served on TCP, WebSocket and UDP at once,
with a plain TCP client, a txgetty L{Client} on C{ws://}, a plain UDP
socket and a txgetty L{Client} on C{udp:} in the same chat; the page and its
script fetched over HTTP from the WebSocket port; the page's protocol code
run by Node.js (skipped without a C{node} that has WebSocket); and the
example run as a script and under twistd.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
import io
import shutil
import subprocess
import sys

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ProcessDone
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool, readBody

from txgetty import Client, LineCodec, PacketTooLargeError, Server, SessionConfig
from txgetty.config import DEFAULT_READ_IDLE_TIMEOUT
from txgetty.errors import PeerIdleError, WebSocketClosedError
from txgetty.session import Session
from txgetty.testing import RecordingListener, SessionPair

from ..support.examples import (
    CallbackOwner,
    EXAMPLES,
    InMemoryRoom,
    LISTENING,
    LineClient,
    ROOT,
    WAIT,
    bounded,
    clientSession,
    connectClient,
    loadModule,
    sessionThroughServer,
    spawn,
    stopAndCheck,
    twistdPath,
)


multichat = loadModule(EXAMPLES / "multichat.py", "txgetty_example_multichat")

WEB = EXAMPLES / "web"
WELCOME = "* welcome to multichat; you are "


class RoomHarness(InMemoryRoom):
    """
    An L{InMemoryRoom} around L{multichat.MultiChat}.  Each server session
    is named after a transport (C{tcp-session}, C{ws-session},
    C{udp-session}), as a real listener of that kind names it.
    """

    def __init__(self, **roomArguments: Any) -> None:
        """
        @param roomArguments: arguments for L{multichat.MultiChat}.
        """
        super().__init__(multichat.MultiChat(**roomArguments))

    def connect(self, name: str, kind: str) -> SessionPair:
        """
        Connect a client over a given kind of transport.

        @param name: the client's name in this harness.
        @param kind: C{"tcp"}, C{"ws"} or C{"udp"}.
        @return: its pair.
        """
        server = Session(clock=self.clock, wheel=self.wheel, owner=CallbackOwner(self.room.newSession),
                         name=f"{kind}-session")
        client = clientSession(self.clock, self.wheel, LineCodec())
        pair = self.pairs[name] = SessionPair(server, client, self.clock, self.wheel).connect()
        self.pump()
        return pair

    def nick(self, name: str) -> str:
        """
        @param name: a client.
        @return: its current nickname in the room.
        """
        return self.room.members[self.pairs[name].server]


class MultiChatUnitTests(SynchronousTestCase):
    """
    examples/multichat.py in memory: one room, sessions named after three
    transports.
    """

    def test_newSession(self) -> None:
        """
        newSession gives every session line framing, the room as listener and
        the line limit plus room for CR LF as maxMsgLen; it sets the idle
        timeout of UDP sessions only (the others keep the server's default).
        """
        room = multichat.MultiChat(maxLineLength=100, udpIdleTimeout=7)
        session, transport, _ = sessionThroughServer(room.newSession)
        self.assertIsInstance(session.codec, LineCodec)
        self.assertIs(session.listener, room)
        self.assertEqual((session.maxMsgLen, session.readIdleTimeout), (102, DEFAULT_READ_IDLE_TIMEOUT))
        self.assertTrue(transport.value().startswith(WELCOME.encode() + b"tcp"))
        chat = RoomHarness(maxLineLength=100, udpIdleTimeout=7)
        udp = chat.connect("u", "udp").server
        self.assertEqual((udp.maxMsgLen, udp.readIdleTimeout), (102, 7.0))
        self.assertIs(multichat.newSession.__self__, multichat.room)

    def test_broadcastAcrossTransports(self) -> None:
        """
        Members are named after their transport; a join is announced to the
        others; every line said reaches every member, its author included,
        in the order the room read them.
        """
        chat = RoomHarness()
        for name, kind in (("t", "tcp"), ("w", "ws"), ("u", "udp")):
            chat.connect(name, kind)
        t, w, u = chat.nick("t"), chat.nick("w"), chat.nick("u")
        self.assertTrue(t.startswith("tcp") and w.startswith("ws") and u.startswith("udp"), (t, w, u))
        chat.say("t", "one")
        chat.say("w", "two")
        chat.say("u", "three")
        said = [f"<{t}> one", f"<{w}> two", f"<{u}> three"]
        self.assertEqual(chat.heard("t"), [
            f"{WELCOME}{t} (commands: /nick NAME, /who, /quit)",
            f"* {w} joined via ws",
            f"* {u} joined via udp",
            *said,
        ])
        self.assertEqual(chat.heard("w")[1:], [f"* {u} joined via udp", *said])
        self.assertEqual(chat.heard("u")[1:], said)

    def test_whoAndNick(self) -> None:
        """
        /who lists the members with their transports; /nick refuses
        malformed and taken names and announces a rename to everybody;
        unknown commands list the known ones.
        """
        chat = RoomHarness()
        chat.connect("t", "tcp")
        chat.connect("w", "ws")
        t, w = chat.nick("t"), chat.nick("w")
        chat.say("w", "/nick two words", f"/nick {t}", "/nick webby", "/who", "/dance")
        self.assertEqual(chat.heard("w")[1:], [
            "* a nickname is 1 to 20 letters, digits, _ or -",
            f"* {t} is taken",
            f"* {w} is now webby",
            f"* here: {t} (tcp), webby (ws)",
            "* unknown command /dance; commands: /nick NAME, /who, /quit",
        ])
        self.assertEqual(chat.heard("t")[-1], f"* {w} is now webby")

    def test_longLines(self) -> None:
        """
        A line above maxLineLength is refused with a notice and the member
        stays; a line above the session's maxMsgLen (the limit plus 2)
        closes its session, and the room says why.
        """
        chat = RoomHarness(maxLineLength=10)
        chat.connect("t", "tcp")
        chat.connect("u", "udp")
        u = chat.nick("u")
        chat.say("u", "x" * 10, "y" * 12)
        self.assertEqual(chat.heard("t")[-1], f"<{u}> " + "x" * 10)
        self.assertEqual(chat.heard("u")[-2:], [f"<{u}> " + "x" * 10, "* line refused: 12 bytes, the limit is 10"])
        self.assertEqual(chat.pairs["u"].server.state, "OPEN")
        chat.say("u", "z" * 13)
        self.assertTrue(chat.pairs["u"].server.closeReason.check(PacketTooLargeError))
        self.assertEqual(chat.heard("t")[-1], f"* {u} left (line too long)")

    def test_quit(self) -> None:
        """
        /quit says bye and closes the member's session; the others see a
        plain leave notice.
        """
        chat = RoomHarness()
        chat.connect("t", "tcp")
        chat.connect("w", "ws")
        w = chat.nick("w")
        chat.say("w", "/quit")
        self.assertEqual(chat.heard("w")[-1], "* bye")
        self.assertEqual(chat.pairs["w"].server.state, "CLOSED")
        self.assertEqual(chat.heard("t")[-1], f"* {w} left")
        self.assertEqual(list(chat.room.members.values()), [chat.nick("t")])

    def test_leaveReasons(self) -> None:
        """
        The leave notice names the transport-specific reasons: a UDP peer
        that went silent, a WebSocket closed with an error code.
        """
        chat = RoomHarness()
        chat.connect("t", "tcp")
        chat.connect("u", "udp")
        chat.connect("w", "ws")
        u, w = chat.nick("u"), chat.nick("w")
        chat.pairs["u"].server.close(Failure(PeerIdleError("no datagram for 60 s")))
        chat.pairs["w"].server.close(Failure(WebSocketClosedError(1006, "the connection was lost")))
        chat.pump()
        self.assertEqual(chat.heard("t")[-2:], [
            f"* {u} left (no datagram for too long)",
            f"* {w} left (WebSocket closed, code 1006)",
        ])

    def test_arguments(self) -> None:
        """
        The script's options have their documented defaults, become the
        three listener descriptions (the page directory quoted in the
        WebSocket URL's query), and impossible values are refused.
        """
        args = multichat.parseArguments([])
        self.assertEqual(
            (args.interface, args.tcp_port, args.ws_port, args.udp_port, args.ws_path, args.max_line, args.udp_idle),
            ("127.0.0.1", 8090, 8080, 8090, "/chat", 512, 60.0),
        )
        args = multichat.parseArguments(["--tcp-port", "0", "--web", "/tmp/my web+page"])
        self.assertEqual(multichat.listenDescriptions(args), [
            "tcp:0:interface=127.0.0.1",
            "ws://127.0.0.1:8080/chat?static=/tmp/my%20web%2Bpage",
            "udp:8090:interface=127.0.0.1",
        ])
        self.assertEqual(multichat.listenDescriptions(multichat.parseArguments(["--no-web"]))[1],
                         "ws://127.0.0.1:8080/chat")
        self.patch(sys, "stderr", io.StringIO())
        for bad in (["--tcp-port", "70000"], ["--ws-path", "/"], ["--ws-path", "chat"], ["--max-line", "0"],
                    ["--udp-idle", "-1"]):
            with self.assertRaises(SystemExit, msg=bad):
                multichat.parseArguments(bad)


class Lines:
    """
    Received lines, and waits for a line to arrive.

    @ivar lines: the lines received so far, decoded.
    """

    def __init__(self) -> None:
        """
        Start with nothing received.
        """
        self.lines: list[str] = []
        self._waiters: list[tuple[Callable[[], bool], Deferred]] = []

    def add(self, line: str) -> None:
        """
        @param line: a line that arrived.
        """
        self.lines.append(line)
        for waiter in list(self._waiters):
            condition, d = waiter
            if condition():
                self._waiters.remove(waiter)
                d.callback(self)

    def waitUntil(self, condition: Callable[[], bool], what: str) -> Deferred:
        """
        @param condition: checked now and after every line.
        @param what: a description for the failure message.
        @return: a L{Deferred} firing once C{condition()} holds, failing after
            L{WAIT} seconds.
        """
        d: Deferred = Deferred()
        if condition():
            d.callback(self)
            return d
        self._waiters.append((condition, d))
        return bounded(d, f"{what}; received {self.lines[-20:]!r} so far")

    def waitForLine(self, line: str) -> Deferred:
        """
        @param line: a line to wait for.
        @return: a L{Deferred} firing once it arrived.
        """
        return self.waitUntil(lambda: line in self.lines, f"the line {line!r}")

    def waitForPrefix(self, prefix: str) -> Deferred:
        """
        @param prefix: the start of a line to wait for.
        @return: a L{Deferred} firing with the first such line.
        """
        def matching() -> list[str]:
            return [line for line in self.lines if line.startswith(prefix)]

        return self.waitUntil(lambda: bool(matching()), f"a line starting {prefix!r}").addCallback(
            lambda _: matching()[0]
        )

    def nick(self) -> str:
        """
        @return: the nickname the welcome line gave.
        """
        [welcome] = [line for line in self.lines if line.startswith(WELCOME)]
        return welcome[len(WELCOME):].split(" ")[0]


class LineListener(RecordingListener):
    """
    The listener of a txgetty client session in the room: keeps the lines.
    """

    def __init__(self) -> None:
        """
        Start with no line.
        """
        super().__init__()
        self.received = Lines()

    def onMessage(self, session: Any, pkg: Any) -> None:
        """
        @param session: the client session.
        @param pkg: one line.
        """
        super().onMessage(session, pkg)
        self.received.add(pkg.decode("utf-8"))


class UDPPeer(DatagramProtocol):
    """
    A plain UDP socket in the room (no txgetty on this side): every datagram
    is a line ending in a newline.

    @ivar received: the lines received.
    """

    def __init__(self) -> None:
        """
        Start with no line.
        """
        self.received = Lines()

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        """
        @param data: one datagram from the room.
        @param addr: its sender.
        """
        for line in data.decode("utf-8").split("\n")[:-1]:
            self.received.add(line)

    def say(self, line: str) -> None:
        """
        @param line: a line to send, in one datagram.
        """
        self.transport.write(line.encode("utf-8") + b"\n")


class TextSender(WebSocketClientProtocol):
    """
    A WebSocket client that sends a text message as soon as it is open,
    which the room must refuse with close code 1003.
    """

    def onOpen(self) -> None:
        """
        Send a text (not binary) message.
        """
        self.sendMessage(b"hello as text\n", isBinary=False)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        """
        @param wasClean: whether the close handshake completed.
        @param code: the server's close code.
        @param reason: its reason.
        """
        self.factory.closed.callback((code, reason))


class MultiChatSocketTests(TestCase):
    """
    examples/multichat.py over real sockets: one room on TCP, WebSocket and
    UDP at once.
    """

    timeout = 60

    @inlineCallbacks
    def startRoom(self, **roomArguments: Any) -> Any:
        """
        Serve a room on tcp, ws (with the page) and udp listeners on free
        ports of 127.0.0.1; the test's cleanup stops it.

        @param roomArguments: arguments for L{multichat.MultiChat}.
        @return: a L{Deferred} firing with C{(room, tcpPort, wsPort, udpPort)}.
        """
        room = multichat.MultiChat(**roomArguments)
        server = Server(
            ["tcp:0:interface=127.0.0.1", f"ws://127.0.0.1:0/chat?static={WEB}", "udp:0:interface=127.0.0.1"],
            room.newSession, reactor=reactor, config=SessionConfig(maxMsgLen=room.maxLineLength + 2),
        )
        server.startService()
        self.addCleanup(lambda: bounded(server.stopService(), "the server to stop"))
        tcp, ws, udp = yield bounded(server.whenListening(), "the server to listen")
        self.assertEqual((tcp.type, ws.type, udp.type), ("TCP", "TCP", "UDP"))
        return room, tcp.port, ws.port, udp.port

    @inlineCallbacks
    def joinTCP(self, port: int) -> Any:
        """
        @param port: the room's TCP port.
        @return: a L{Deferred} firing with a connected L{LineClient} once it
            was welcomed.
        """
        client = yield connectClient(self, port, LineClient())
        yield client.waitUntil(lambda: any(line.startswith(WELCOME) for line in client.lines()), "the welcome")
        return client

    @inlineCallbacks
    def joinClient(self, address: str) -> Any:
        """
        Join with a txgetty L{Client} (C{ws://...} or C{udp:...}); the test's
        cleanup stops it.

        @param address: the client address.
        @return: a L{Deferred} firing with C{(session, lines)}.
        """
        listener = LineListener()

        def newSession(session: Any) -> None:
            session.codec = LineCodec()
            session.listener = listener

        client = Client(address, newSession, reactor=reactor)
        client.startService()
        self.addCleanup(lambda: bounded(client.stopService(), "the client to stop"))
        session = yield bounded(client.whenConnected(), f"a session to {address}")
        return session, listener.received

    @inlineCallbacks
    def joinUDP(self, port: int) -> Any:
        """
        Bind a plain UDP socket connected to the room; the test's cleanup
        closes it.  It joins the room with its first datagram.

        @param port: the room's UDP port.
        @return: a L{Deferred} firing with the L{UDPPeer}.
        """
        peer = UDPPeer()
        udp = reactor.listenUDP(0, peer, interface="127.0.0.1")
        udp.connect("127.0.0.1", port)
        self.addCleanup(udp.stopListening)
        yield None
        return peer

    @inlineCallbacks
    def test_oneRoomThreeTransports(self) -> Any:
        """
        A TCP client, a txgetty Client on ws:// and a plain UDP socket are in
        one room: each join is announced, every line said on any transport
        reaches all three, /who lists all three with their transports, and
        leaving over WebSocket and UDP is announced over TCP.
        """
        room, tcpPort, wsPort, udpPort = yield self.startRoom()
        tcp = yield self.joinTCP(tcpPort)
        wsSession, ws = yield self.joinClient(f"ws://127.0.0.1:{wsPort}/chat")
        yield ws.waitForPrefix(WELCOME)
        self.assertEqual(wsSession.name, "ws-session")
        udp = yield self.joinUDP(udpPort)
        udp.say("hello from udp")
        yield udp.received.waitForPrefix(WELCOME)
        tcpNick, wsNick, udpNick = tcp.lines()[0][len(WELCOME):].split(" ")[0], ws.nick(), udp.received.nick()
        yield tcp.waitForLine(f"* {wsNick} joined via ws")
        yield tcp.waitForLine(f"* {udpNick} joined via udp")

        tcp.send("hello from tcp")
        wsSession.writePkg(b"hello from ws")
        said = {f"<{udpNick}> hello from udp", f"<{tcpNick}> hello from tcp", f"<{wsNick}> hello from ws"}
        yield tcp.waitUntil(lambda: said <= set(tcp.lines()), "the three lines over TCP")
        yield ws.waitUntil(lambda: said <= set(ws.lines), "the three lines over WebSocket")
        yield udp.received.waitUntil(lambda: said <= set(udp.received.lines), "the three lines over UDP")

        tcp.send("/who")
        yield tcp.waitForLine(f"* here: {tcpNick} (tcp), {wsNick} (ws), {udpNick} (udp)")
        self.assertEqual(len(room.members), 3)

        yield bounded(wsSession.close(), "the WebSocket session to close")
        yield tcp.waitForLine(f"* {wsNick} left")
        udp.say("/quit")
        yield udp.received.waitForLine("* bye")
        yield tcp.waitForLine(f"* {udpNick} left")
        self.assertEqual(list(room.members.values()), [tcpNick])

    @inlineCallbacks
    def test_udpClientAndSilence(self) -> Any:
        """
        A txgetty Client on udp: joins with its first datagram and hears the
        room; a UDP peer that stays silent for udpIdleTimeout leaves, the
        room says why, and its next datagram joins it again as a new member.
        """
        _, tcpPort, _, udpPort = yield self.startRoom(udpIdleTimeout=0.5)
        tcp = yield self.joinTCP(tcpPort)
        session, udp = yield self.joinClient(f"udp:127.0.0.1:{udpPort}")
        self.assertEqual(session.name, "udp-session")
        session.writePkg(b"")  # an empty line: join without saying anything
        yield udp.waitForPrefix(WELCOME)
        nick = udp.nick()
        tcp.send("anyone on udp?")
        yield udp.waitUntil(lambda: any(line.endswith("> anyone on udp?") for line in udp.lines), "the TCP line")
        yield tcp.waitForLine(f"* {nick} left (no datagram for too long)")
        session.writePkg(b"back again")
        def welcomes() -> list[str]:
            return [line for line in udp.lines if line.startswith(WELCOME)]

        yield udp.waitUntil(lambda: len(welcomes()) == 2, "a second welcome")
        second = welcomes()[1][len(WELCOME):].split(" ")[0]
        self.assertNotEqual(second, nick)
        yield tcp.waitForLine(f"<{second}> back again")

    @inlineCallbacks
    def test_browserPageAndTextMessages(self) -> Any:
        """
        The WebSocket port also serves the browser page over plain HTTP (the
        ws listener's static= option): / is index.html, which loads
        chat.js.  A WebSocket client that sends a text message is refused
        with close code 1003, and the room says why it left.
        """
        _, tcpPort, wsPort, _ = yield self.startRoom()
        pool = HTTPConnectionPool(reactor, persistent=False)
        agent = Agent(reactor, pool=pool)
        for path, expected in ((b"/", b'<script src="chat.js"></script>'), (b"/chat.js", b"class ChatConnection")):
            response = yield bounded(agent.request(b"GET", b"http://127.0.0.1:%d%s" % (wsPort, path)), "GET")
            body = yield bounded(readBody(response), "the body")
            self.assertEqual(response.code, 200, path)
            self.assertIn(expected, body)
        self.assertEqual(body, (WEB / "chat.js").read_bytes())

        tcp = yield self.joinTCP(tcpPort)
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{wsPort}/chat")
        factory.protocol = TextSender
        factory.closed = Deferred()
        yield bounded(TCP4ClientEndpoint(reactor, "127.0.0.1", wsPort).connect(factory), "a WebSocket connection")
        code, reason = yield bounded(factory.closed, "the server to close the WebSocket")
        self.assertEqual(code, 1003)
        self.assertIn("text message", reason)
        left = yield tcp.waitUntil(lambda: any(" left (a text message arrived" in line for line in tcp.lines()),
                                   "the leave notice")
        self.assertTrue(left)

    @inlineCallbacks
    def test_pageScriptInNode(self) -> Any:
        """
        The page's own protocol code (examples/web/chat.js: LineFraming and
        ChatConnection over the WebSocket API), run by Node.js, joins the
        room, is heard over TCP, and hears the room.
        """
        node = shutil.which("node")
        if node is None:
            raise SkipTest("no node on PATH")
        probe = subprocess.run(
            [node, "--experimental-websocket", "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
            check=False, capture_output=True, timeout=WAIT,
        )
        if probe.returncode != 0:
            raise SkipTest("this node has no WebSocket (needs Node.js 20.10 or later)")
        _, tcpPort, wsPort, _ = yield self.startRoom()
        tcp = yield self.joinTCP(tcpPort)
        harness = Path(self.mktemp() + ".js").resolve()
        harness.write_text(NODE_HARNESS, encoding="utf-8")
        watcher = spawn(self, [node, "--experimental-websocket", str(harness), str(WEB / "chat.js"),
                               f"ws://127.0.0.1:{wsPort}/chat"], cwd=str(ROOT))
        line = yield tcp.waitUntil(lambda: any(line.endswith("> hello from node") for line in tcp.lines()),
                                   "the line from node")
        self.assertTrue(line)
        reason = yield bounded(watcher.whenEnded(), "node to finish")
        output = watcher.output.decode()
        self.assertIsInstance(reason, ProcessDone, output)
        self.assertIn(f"line {WELCOME}ws", output)
        self.assertIn("status disconnected (close code 1000", output)


#: A Node.js script that loads the page's chat.js, joins the room, says one
#: line, and leaves once it heard it back.
NODE_HARNESS = """\
const { ChatConnection } = require(process.argv[2]);
const conn = new ChatConnection(process.argv[3], {
  onLine: (line) => {
    console.log("line " + line);
    if (line.endsWith("> hello from node")) conn.close();
  },
  onStatus: (text, connected) => {
    console.log("status " + text);
    if (connected) conn.send("hello from node");
    else if (text.startsWith("disconnected")) process.exit(0);
  },
});
conn.open();
setTimeout(() => { console.log("timed out"); process.exit(1); }, 10000);
"""


class MultiChatProcessTests(TestCase):
    """
    examples/multichat.py run as the user runs it: as a script, and under
    twistd from the examples directory.
    """

    timeout = 60

    @inlineCallbacks
    def chatOverTCPAndUDP(self, tcpPort: int, udpPort: int, wsPort: int) -> Any:
        """
        Check a running room: a TCP client and a UDP peer hear each other,
        and the page is served on the WebSocket port.

        @param tcpPort: the room's TCP port.
        @param udpPort: its UDP port.
        @param wsPort: its WebSocket port.
        @return: a L{Deferred} firing with the TCP client once checked.
        """
        tcp = yield connectClient(self, tcpPort, LineClient())
        yield tcp.waitUntil(lambda: any(line.startswith(WELCOME) for line in tcp.lines()), "the welcome")
        peer = UDPPeer()
        udp = reactor.listenUDP(0, peer, interface="127.0.0.1")
        udp.connect("127.0.0.1", udpPort)
        self.addCleanup(udp.stopListening)
        peer.say("hi from udp")
        nick = (yield peer.received.waitForPrefix(WELCOME))[len(WELCOME):].split(" ")[0]
        yield tcp.waitForLine(f"<{nick}> hi from udp")
        tcp.send("hi from tcp")
        yield peer.received.waitUntil(lambda: any(line.endswith("> hi from tcp") for line in peer.received.lines),
                                      "the TCP line over UDP")
        agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        response = yield bounded(agent.request(b"GET", b"http://127.0.0.1:%d/" % wsPort), "GET /")
        body = yield bounded(readBody(response), "the page")
        self.assertIn(b"<title>txgetty multichat</title>", body)
        return tcp

    @inlineCallbacks
    def test_script(self) -> Any:
        """
        C{python examples/multichat.py} with port 0 everywhere prints the
        three bound addresses and the page's URL, serves the room and the
        page, and exits cleanly on SIGTERM after closing its members.
        """
        watcher = spawn(
            self,
            [sys.executable, str(EXAMPLES / "multichat.py"), "--tcp-port", "0", "--ws-port", "0",
             "--udp-port", "0", "--max-line", "32"],
            cwd=str(ROOT),
        )
        tcpMatch = yield watcher.waitForOutput(rb"multichat: tcp 127\.0\.0\.1:(\d+)")
        wsMatch = yield watcher.waitForOutput(
            rb"multichat: ws://127\.0\.0\.1:(\d+)/chat \(browser page: http://127\.0\.0\.1:(\d+)/\)"
        )
        udpMatch = yield watcher.waitForOutput(rb"multichat: udp 127\.0\.0\.1:(\d+)")
        self.assertEqual(wsMatch.group(1), wsMatch.group(2))
        tcp = yield self.chatOverTCPAndUDP(int(tcpMatch.group(1)), int(udpMatch.group(1)), int(wsMatch.group(1)))
        tcp.send("x" * 33)
        yield tcp.waitForLine("* line refused: 33 bytes, the limit is 32")
        yield stopAndCheck(self, watcher)
        yield tcp.whenLost()

    @inlineCallbacks
    def test_twistd(self) -> Any:
        """
        From the examples directory, C{twistd -n txgetty --app
        multichat:newSession} with a tcp, a ws (static=web) and a udp
        listener serves the room and the page.
        """
        watcher = spawn(
            self,
            [twistdPath(), "-n", "--pidfile=", "txgetty", "--no-rpc", "--app", "multichat:newSession",
             "--listen", "tcp:0:interface=127.0.0.1", "--listen", "ws://127.0.0.1:0/chat?static=web",
             "--listen", "udp:0:interface=127.0.0.1"],
            cwd=str(EXAMPLES),
        )
        tcpMatch = yield watcher.waitForOutput(LISTENING)
        wsMatch = yield watcher.waitForOutput(rb"listening on ws://127\.0\.0\.1:(\d+)/chat ")
        udpMatch = yield watcher.waitForOutput(rb"listening on udp:127\.0\.0\.1:(\d+)")
        yield self.chatOverTCPAndUDP(int(tcpMatch.group(1)), int(udpMatch.group(1)), int(wsMatch.group(1)))
        yield stopAndCheck(self, watcher)
