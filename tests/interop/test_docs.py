"""
Keep the documentation true: run the code of C{docs/} the way a reader would
(files written out from the code blocks, run as the text says), and check the
reference tables of C{docs/options.md}, C{docs/contracts.md},
C{docs/flow-control.md} and C{docs/transports.md} against the code.

Code blocks that are files start with a C{# file: NAME} line; every Python
block of C{getting-started.md} and C{testing.md} must be one.  Blocks that
hard-code port 8090 are run on a free port instead (port 0 for servers; a
command-line argument for the client).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any
import base64
import os
import re
import shutil
import struct
import sys
import tempfile

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ProcessDone
from twisted.internet.protocol import Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty import CodecError, PacketTooLargeError, SessionConfig
from txgetty.session import lifecycle as S
from txgetty.testing import RecordingListener, connectedSessions, sessionOnStringTransport
from txgetty.tools.tap import Options

from ..support.docs import DOCS, codeBlocks, docFiles, onFreePort, writeFiles
from ..support.examples import (
    LISTENING,
    ROOT,
    bounded,
    loadModule,
    sessionThroughServer,
    spawn,
    startServer,
    stopAndCheck,
    twistdPath,
)
from ..support.packages import repository


class BlockTests(SynchronousTestCase):
    """
    The shape of the documents' code blocks.
    """

    def test_tutorialBlocksAreFiles(self) -> None:
        """
        Every Python block of getting-started.md and testing.md is a complete
        file (starts with "# file: NAME"), with distinct names, and compiles.
        """
        names = []
        for doc in ("getting-started.md", "testing.md", "embedding.md"):
            for name, code in codeBlocks(doc):
                if doc != "embedding.md":
                    self.assertIsNotNone(name, f"{doc}: a python block without '# file:':\n{code}")
                compile(code, f"{doc}:{name}", "exec")
                if name is not None:
                    names.append(name)
        self.assertEqual(len(names), len(set(names)), names)
        self.assertEqual(
            sorted(names),
            ["client.py", "echo.tac", "serve_echo.py", "test_uppercase.py", "typed.py", "uppercase.py"],
        )


class GettingStartedTests(TestCase):
    """
    docs/getting-started.md, pasted and run as it says.
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Write the page's files into a fresh directory.
        """
        self.directory = writeFiles(Path(self.mktemp()), docFiles("getting-started.md"))

    @inlineCallbacks
    def runClient(self, port: int, *words: str) -> Any:
        """
        Run the page's client.py against a port.

        @param port: the server's port.
        @param words: words to send (the client's defaults if none).
        @return: a L{Deferred} firing with the client's output.
        """
        watcher = spawn(
            self, [sys.executable, "client.py", str(port), *words], cwd=str(self.directory)
        )
        reason = yield bounded(watcher.whenEnded(), "client.py to finish")
        self.assertIsInstance(reason, ProcessDone, watcher.output.decode())
        return watcher.output.decode()

    @inlineCallbacks
    def test_builtinEcho(self) -> Any:
        """
        "twistd -n txgetty" (here on a free port) serves the built-in echo;
        client.py, and "txgetty send ADDRESS hello getty", print "hello" and
        "getty" back.
        """
        watcher = spawn(
            self,
            [twistdPath(), "-n", "--pidfile=", "txgetty", "--rpc-listen", "tcp:0:interface=127.0.0.1", "--listen", "tcp:0:interface=127.0.0.1"],
            cwd=str(self.directory),
        )
        match = yield watcher.waitForOutput(LISTENING)
        port = int(match.group(1))
        output = yield self.runClient(port)
        self.assertEqual(output, "hello\ngetty\n")
        command = str(Path(sys.executable).parent / "txgetty")
        sender = spawn(self, [command, "send", f"127.0.0.1:{port}", "hello", "getty"], cwd=str(self.directory))
        reason = yield bounded(sender.whenEnded(), "txgetty send to finish")
        self.assertIsInstance(reason, ProcessDone, sender.output.decode())
        self.assertEqual(sender.output, b"hello\ngetty\n")
        yield stopAndCheck(self, watcher)

    @inlineCallbacks
    def test_uppercaseUnderTwistd(self) -> Any:
        """
        "twistd -n txgetty --app uppercase:newSession", run in the directory
        of the page's uppercase.py (no PYTHONPATH), serves it, and client.py
        prints the words in capitals.
        """
        watcher = spawn(
            self,
            [twistdPath(), "-n", "--pidfile=", "txgetty", "--rpc-listen", "tcp:0:interface=127.0.0.1", "--app", "uppercase:newSession",
             "--listen", "tcp:0:interface=127.0.0.1"],
            cwd=str(self.directory),
        )
        match = yield watcher.waitForOutput(LISTENING)
        port = int(match.group(1))
        output = yield self.runClient(port)
        self.assertEqual(output, "HELLO\nGETTY\n")
        output = yield self.runClient(port, "one", "two")
        self.assertEqual(output, "ONE\nTWO\n")
        yield stopAndCheck(self, watcher)
        self.assertIn(b"read 2 pkgs/18 B", watcher.output)

    @inlineCallbacks
    def test_uppercaseOnServer(self) -> Any:
        """
        The page's newSession, imported and served by a Server in this
        process, answers client.py in capitals and sets the documented
        read-idle timeout.
        """
        uppercase = loadModule(self.directory / "uppercase.py", "txgetty_doc_uppercase")
        server, port = yield startServer(self, uppercase.newSession)
        output = yield self.runClient(port, "txgetty")
        self.assertEqual(output, "TXGETTY\n")
        session, _, _ = sessionThroughServer(uppercase.newSession)
        self.assertEqual(session.readIdleTimeout, 300.0)
        self.assertEqual(server.opened, 1)

    def test_typedCodec(self) -> None:
        """
        The page's typed.py codec follows the four read cases: packets split
        into single bytes are reassembled, PING is answered with PONG, an
        unknown type is a CodecError, and a declared length above maxMsgLen
        is refused at the header.
        """
        typed = loadModule(self.directory / "typed.py", "txgetty_doc_typed")
        pair = connectedSessions(typed.PingPong(), RecordingListener(), typed.TypedCodec())
        pair.client.writePkgs([(typed.TEXT, b"ignored"), (typed.PING, b"abc"), (typed.PING, b"")])
        pair.pump(chunkSize=1)
        self.assertEqual(pair.clientListener.messages, [(typed.PONG, b"abc"), (typed.PONG, b"")])

        session, _ = sessionOnStringTransport(RecordingListener(), typed.TypedCodec())
        session.dataReceived(b"\x09\x00\x01x")
        self.assertTrue(session.listener.errors[0].check(CodecError))
        self.assertTrue(session.isClosed)

        session, _, _ = sessionThroughServer(typed.newSession)
        self.assertEqual(session.maxMsgLen, 3 + 4096)
        session.dataReceived(b"\x03\x10\x00")  # TEXT header: 3 + 4096 bytes, the limit
        session.dataReceived(b"x" * 4096)  # its body
        self.assertEqual((session.state, session.packetsRead), ("OPEN", 1))
        session.dataReceived(b"\x03\x10\x01")  # TEXT header: 3 + 4097 bytes, no body yet
        self.assertTrue(session.closeReason.check(PacketTooLargeError))
        self.assertEqual((session.closeReason.value.length, session.closeReason.value.limit), (4100, 4099))


class TestingDocTests(TestCase):
    """
    docs/testing.md: its example test file passes, run as the page says.
    """

    timeout = 60

    @inlineCallbacks
    def test_exampleTestsPass(self) -> Any:
        """
        "PYTHONPATH=. trial test_uppercase", next to the getting-started
        uppercase.py, runs every test of the example and passes, with the
        success count the page shows.
        """
        files = docFiles("getting-started.md")
        files.update(docFiles("testing.md"))
        directory = writeFiles(Path(self.mktemp()), files)
        count = len(re.findall(r"^    def test_", files["test_uppercase.py"], re.M))
        self.assertIn(f"PASSED (successes={count})", (DOCS / "testing.md").read_text(encoding="utf-8"))
        trial = str(Path(sys.executable).parent / "trial")
        watcher = spawn(self, [trial, "test_uppercase"], cwd=str(directory), pythonPath=["."])
        reason = yield bounded(watcher.whenEnded(), "trial to finish", 45)
        output = watcher.output.decode()
        self.assertIsInstance(reason, ProcessDone, output)
        self.assertIn(f"PASSED (successes={count})", output)


class EmbeddingDocTests(TestCase):
    """
    docs/embedding.md: the .tac file and the script work.
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Write the page's files (on a free port) and the getting-started
        client into a fresh directory.
        """
        files = {name: onFreePort(code) for name, code in docFiles("embedding.md").items()}
        files["client.py"] = docFiles("getting-started.md")["client.py"]
        self.directory = writeFiles(Path(self.mktemp()), files)

    @inlineCallbacks
    def echoCheck(self, port: int) -> Any:
        """
        Run client.py against an echo server.

        @param port: the server's port.
        @return: a L{Deferred} firing once the echo is checked.
        """
        watcher = spawn(self, [sys.executable, "client.py", str(port), "embedded"], cwd=str(self.directory))
        reason = yield bounded(watcher.whenEnded(), "client.py to finish")
        self.assertIsInstance(reason, ProcessDone, watcher.output.decode())
        self.assertEqual(watcher.output, b"embedded\n")

    @inlineCallbacks
    def test_tac(self) -> Any:
        """
        "twistd -ny echo.tac" starts the echo server and the statistics
        timer, echoes, and stops cleanly.
        """
        watcher = spawn(
            self, [twistdPath(), "-n", "--pidfile=", "-y", "echo.tac"], cwd=str(self.directory)
        )
        match = yield watcher.waitForOutput(LISTENING)
        yield watcher.waitForOutput(rb"\[echo#info\] 0 sessions; 0 accepted, 0 closed so far")
        yield self.echoCheck(int(match.group(1)))
        yield stopAndCheck(self, watcher)

    @inlineCallbacks
    def test_script(self) -> Any:
        """
        "python serve_echo.py" prints its address, echoes, and exits with
        status 0 on SIGTERM.
        """
        watcher = spawn(self, [sys.executable, "serve_echo.py"], cwd=str(self.directory))
        match = yield watcher.waitForOutput(rb"listening on 127\.0\.0\.1:(\d+)")
        yield self.echoCheck(int(match.group(1)))
        reason = yield watcher.stop()
        self.assertIsInstance(reason, ProcessDone, watcher.output.decode())


    @inlineCallbacks
    def test_noReactorAtImport(self) -> Any:
        """
        As the page says, importing every txgetty module in a fresh
        interpreter does not import (and so install) the global reactor.
        """
        code = (
            "import importlib, pkgutil, sys, txgetty\n"
            "for m in pkgutil.iter_modules(txgetty.__path__):\n"
            "    importlib.import_module('txgetty.' + m.name)\n"
            "print('reactor imported:', 'twisted.internet.reactor' in sys.modules)\n"
        )
        output = yield self.runPython(code)
        self.assertEqual(output, b"reactor imported: False\n")

    @inlineCallbacks
    def test_noAutobahnWithoutWebSocket(self) -> Any:
        """
        As transports.md says, importing txgetty, its twistd plugin and its
        RPC layer and making a server does not import autobahn or
        twisted.web; starting its C{ws://} listener does.
        """
        code = (
            "import sys\n"
            "import txgetty, txgetty.tools.tap, txgetty.rpc\n"
            "from twisted.internet import reactor\n"
            "from txgetty import EchoListener, HelloCodec, Server\n"
            "def newSession(session):\n"
            "    session.codec, session.listener = HelloCodec(), EchoListener()\n"
            "server = Server(['tcp:0:interface=127.0.0.1', 'ws://127.0.0.1:0/echo'],\n"
            "                newSession, reactor=reactor)\n"
            "print('before:', 'autobahn' in sys.modules, 'twisted.web.server' in sys.modules)\n"
            "server.startService()\n"
            "def done(addresses):\n"
            "    print('after:', len(addresses), 'autobahn' in sys.modules)\n"
            "    server.stopService().addBoth(lambda _: reactor.stop())\n"
            "server.whenListening().addCallbacks(done, lambda f: (print(f), reactor.stop()))\n"
            "reactor.callLater(20, reactor.stop)\n"
            "reactor.run()\n"
        )
        output = yield self.runPython(code)
        self.assertEqual(output, b"before: False False\nafter: 2 True\n")

    @inlineCallbacks
    def runPython(self, code: str) -> Any:
        """
        Run a snippet in a fresh interpreter, which must end cleanly.

        @param code: the snippet.
        @return: a L{Deferred} firing with what it printed.
        """
        watcher = spawn(self, [sys.executable, "-c", code], cwd=str(self.directory))
        reason = yield bounded(watcher.whenEnded(), "the snippet to finish")
        self.assertIsInstance(reason, ProcessDone, watcher.output.decode())
        return watcher.output


class ClientDocTests(TestCase):
    """
    docs/client.md, pasted and run as it says.
    """

    timeout = 60

    @inlineCallbacks
    def test_helloClient(self) -> Any:
        """
        The page's hello_client.py, run against an echo server, prints the
        five replies (one session, then one round over the 4 sessions) and
        exits cleanly.
        """
        from txgetty import EchoListener, HelloCodec

        def newSession(session: Any) -> None:
            session.codec = HelloCodec()
            session.listener = EchoListener()

        server, port = yield startServer(self, newSession)
        directory = writeFiles(Path(self.mktemp()), docFiles("client.md"))
        watcher = spawn(self, [sys.executable, "hello_client.py", f"127.0.0.1:{port}"], cwd=str(directory))
        reason = yield bounded(watcher.whenEnded(), "hello_client.py to finish")
        self.assertIsInstance(reason, ProcessDone, watcher.output.decode())
        lines = watcher.output.decode().splitlines()
        self.assertEqual(lines, ["reply: hello"] + ["reply: round-robin"] * 4)
        self.assertEqual(server.accepted, 4)


class ReferenceTests(SynchronousTestCase):
    """
    The reference tables agree with the code.
    """

    def test_twistdOptions(self) -> None:
        """
        docs/options.md has a row for every twistd txgetty option, with the
        option's default.
        """
        text = (DOCS / "options.md").read_text(encoding="utf-8")
        for name, _, default, *_ in Options.optParameters:
            rows = [line for line in text.splitlines() if line.startswith(f"| `--{name} ")]
            self.assertEqual(len(rows), 1, f"--{name} has {len(rows)} rows in options.md")
            shown = "none" if default is None else str(default)
            self.assertIn(f"`{shown}`" if default is not None else shown, rows[0], rows[0])
        self.assertIn("| `--listen ENDPOINT` | `tcp:8090:interface=127.0.0.1` |", text)

    def test_sessionSettings(self) -> None:
        """
        docs/options.md has a row for every SessionConfig field, with its
        default.
        """
        text = (DOCS / "options.md").read_text(encoding="utf-8")
        for field in fields(SessionConfig):
            rows = [line for line in text.splitlines() if line.startswith(f"| `{field.name}` |")]
            self.assertEqual(len(rows), 1, f"{field.name} has {len(rows)} rows in options.md")
            self.assertIn(f"`{field.default!r}`", rows[0].replace("'", '"').replace('"', "'"), rows[0])

    def test_stateTable(self) -> None:
        """
        The life-cycle table of docs/contracts.md lists exactly the
        transitions of txgetty.session.lifecycle.TRANSITIONS.
        """
        text = (DOCS / "contracts.md").read_text(encoding="utf-8")
        names = {state.name for state in S.STATES}
        documented = set()
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 4 and cells[0] in names and cells[2] in names:
                for event in re.sub(r"\(.*?\)", "", cells[1]).split("/"):
                    documented.add((cells[0], event.strip(), cells[2]))
        actual = {(state.name, event, nxt.name) for (state, event), (nxt, _) in S.TRANSITIONS.items()}
        self.assertEqual(documented, actual)


class TransportsDocTests(TestCase):
    """
    docs/transports.md: its client talks to the built-in echo over every
    transport the page lists, with the commands it shows; its tables agree
    with the code.
    """

    timeout = 90

    def setUp(self) -> None:
        """
        Write the page's files into a fresh directory.
        """
        self.directory = writeFiles(Path(self.mktemp()).resolve(), docFiles("transports.md"))

    @inlineCallbacks
    def runClient(self, address: str, *words: str, succeed: bool = True) -> Any:
        """
        Run the page's anyclient.py.

        @param address: its ADDRESS argument.
        @param words: words to send (its defaults if none).
        @param succeed: whether it must exit with status 0.
        @return: a L{Deferred} firing with its output.
        """
        watcher = spawn(self, [sys.executable, "anyclient.py", address, *words], cwd=str(self.directory))
        reason = yield bounded(watcher.whenEnded(), f"anyclient.py {address} to finish")
        if succeed:
            self.assertIsInstance(reason, ProcessDone, watcher.output.decode())
        else:
            self.assertFalse(isinstance(reason, ProcessDone), watcher.output.decode())
        return watcher.output.decode()

    @inlineCallbacks
    def test_everyTransport(self) -> Any:
        """
        The page's twistd command (here on free ports, and without RPC)
        serves the echo on tcp, udp, ws and unix at once, logging the
        WebSocket listener as a URL; anyclient.py gets "hello" and "getty"
        back over each, from a session named after the transport.
        """
        text = (DOCS / "transports.md").read_text(encoding="utf-8")
        self.assertIn(
            "twistd -n txgetty --listen tcp:8090:interface=127.0.0.1 --listen udp:8090:interface=127.0.0.1 \\\n"
            "    --listen ws://127.0.0.1:8080/echo --listen unix:/tmp/echo.sock", text,
        )
        # A short path: AF_UNIX paths are limited to ~107 bytes, and the
        # test's own directory may be deep in a CI checkout.
        sockets = tempfile.mkdtemp(prefix="txgetty-")
        self.addCleanup(shutil.rmtree, sockets, True)
        socket = os.path.join(sockets, "echo.sock")
        watcher = spawn(
            self,
            [twistdPath(), "-n", "--pidfile=", "txgetty", "--no-rpc",
             "--listen", "tcp:0:interface=127.0.0.1", "--listen", "udp:0:interface=127.0.0.1",
             "--listen", "ws://127.0.0.1:0/echo", "--listen", f"unix:{socket}"],
            cwd=str(self.directory),
        )
        tcp = yield watcher.waitForOutput(LISTENING)
        udp = yield watcher.waitForOutput(rb"listening on udp:127\.0\.0\.1:(\d+) \(from udp:0:interface=127\.0\.0\.1\)")
        ws = yield watcher.waitForOutput(rb"listening on ws://127\.0\.0\.1:(\d+)/echo \(from ws://127\.0\.0\.1:0/echo\)")
        yield watcher.waitForOutput(rb"listening on unix:")
        for address, name in (
            (f"127.0.0.1:{int(tcp.group(1))}", "tcp-session"),
            (f"udp:127.0.0.1:{int(udp.group(1))}", "udp-session"),
            (f"ws://127.0.0.1:{int(ws.group(1))}/echo", "ws-session"),
            (f"unix:{socket}", "unix-session"),
        ):
            output = yield self.runClient(address)
            self.assertEqual(output, f"{name}: hello\n{name}: getty\n")
            if name in ("udp-session", "ws-session"):
                self.assertIn(output, text)
        yield stopAndCheck(self, watcher)

    @inlineCallbacks
    def test_wss(self) -> Any:
        """
        The page's wss commands, with test certificates and a free port:
        the listener uses the --tls-* files; the client verifies the server
        with caFile= and the URL's host or hostname=, and refuses it
        without the CA.
        """
        from ..support.certs import testCertificates

        certs = testCertificates()
        text = (DOCS / "transports.md").read_text(encoding="utf-8")
        for line in (
            "twistd -n txgetty --tls-key server.key --tls-cert server.crt --listen wss://127.0.0.1:8443/echo",
            'python anyclient.py "wss://localhost:8443/echo?caFile=ca.pem"',
            'python anyclient.py "wss://127.0.0.1:8443/echo?caFile=ca.pem&hostname=localhost"',
        ):
            self.assertIn(line, text)
        watcher = spawn(
            self,
            [twistdPath(), "-n", "--pidfile=", "txgetty", "--no-rpc", "--tls-key", certs.serverKey,
             "--tls-cert", certs.serverCert, "--listen", "wss://127.0.0.1:0/echo"],
            cwd=str(self.directory),
        )
        match = yield watcher.waitForOutput(rb"listening on wss://127\.0\.0\.1:(\d+)/echo")
        port = int(match.group(1))
        for url in (f"wss://localhost:{port}/echo?caFile={certs.caCert}",
                    f"wss://127.0.0.1:{port}/echo?caFile={certs.caCert}&hostname=localhost"):
            output = yield self.runClient(url, "secure")
            self.assertEqual(output, "wss-session: secure\n")
        output = yield self.runClient(f"wss://localhost:{port}/echo", "secure", succeed=False)
        self.assertIn("anyclient: gave up connecting to wss://localhost:", output)
        self.assertIn("certificate verify failed", output)
        output = yield self.runClient(f"udp:127.0.0.1:{port}", "nobody", succeed=False)
        self.assertIn("anyclient: ", output)
        yield stopAndCheck(self, watcher)

    def test_pathDispatch(self) -> None:
        """
        The page's new-session callback picks the listener by the session's
        ws.path attribute.
        """
        from txgetty import HelloCodec

        [code] = [code for name, code in codeBlocks("transports.md") if name is None]
        admin, public = RecordingListener(), RecordingListener()
        namespace: dict[str, Any] = {"HelloCodec": HelloCodec, "ADMIN": admin, "PUBLIC": public}
        exec(code, namespace)  # noqa: S102 (the page's own code)
        for path, listener in (("/admin", admin), ("/chat", public)):
            session, _ = sessionOnStringTransport(RecordingListener(), HelloCodec())
            session.setAttribute("ws.path", path)
            namespace["newSession"](session)
            self.assertIs(session.listener, listener)

    def test_closeCodes(self) -> None:
        """
        The page's close-code table is closeCodeFor's mapping: each row's
        errors give the row's code.
        """
        from twisted.python.failure import Failure

        from txgetty import (
            ConnectionClosedLocally,
            OpenTimeoutError,
            PacketTimeoutError,
            ReadIdleTimeoutError,
        )
        from txgetty.errors import DeadPeerError, OutboundOverflowError, PeerIdleError
        from txgetty.transports.websocket import closeCodeFor

        text = (DOCS / "transports.md").read_text(encoding="utf-8")
        rows = {
            1000: [None, ConnectionClosedLocally("closed by this side"), ConnectionClosedLocally("bye")],
            1001: [ConnectionClosedLocally("the server is stopping"), ConnectionClosedLocally("the client is stopping")],
            1003: [CodecError("a text message arrived; txgetty sessions exchange binary messages")],
            1007: [CodecError("a message of 3 bytes ends with 3 bytes of an incomplete packet")],
            1009: [PacketTooLargeError(10, 5)],
            1008: [ReadIdleTimeoutError("x"), PacketTimeoutError("x"), OpenTimeoutError("x"), PeerIdleError("x"),
                   OutboundOverflowError("x"), DeadPeerError("x")],
            1011: [ValueError("a handler bug")],
        }
        for code, reasons in rows.items():
            [row] = [line for line in text.splitlines() if line.startswith("| ") and f"| {code} " in line]
            for reason in reasons:
                failure = None if reason is None else Failure(reason)
                self.assertEqual(closeCodeFor(failure)[0], code, (reason, row))
                if code == 1008:
                    self.assertIn(f"`{type(reason).__name__}`", row)
        long = "é" * 100
        self.assertEqual(len(closeCodeFor(Failure(ValueError(long)))[1].encode("utf-8")), 122)

    def test_blocks(self) -> None:
        """
        The Python blocks of transports.md and flow-control.md are files
        (but for the transports.md fragment tested above) and compile.
        """
        names = {doc: [name for name, code in codeBlocks(doc) if compile(code, f"{doc}:{name}", "exec")]
                 for doc in ("transports.md", "flow-control.md")}
        self.assertEqual(names, {
            "transports.md": ["anyclient.py", None],
            "flow-control.md": ["phonebook.py", "phonebook.tac", "feed.py"],
        })


class FlowControlDocTests(TestCase):
    """
    docs/flow-control.md: the phone book runs in a task pool under twistd
    and in its .tac, and the feed stops writing to a client that does not
    read, as the page says.
    """

    timeout = 90

    def setUp(self) -> None:
        """
        Write the page's files (the .tac on a free port) into a fresh
        directory.
        """
        files = docFiles("flow-control.md")
        files["phonebook.tac"] = onFreePort(files["phonebook.tac"])
        self.directory = writeFiles(Path(self.mktemp()).resolve(), files)

    @inlineCallbacks
    def askPhoneBook(self, port: int) -> Any:
        """
        Ask a phone book for a known and an unknown name, pipelined.

        @param port: its port.
        @return: a L{Deferred} firing once the answers came, in order.
        """
        from ..support.examples import LineClient, connectClient

        client = yield connectClient(self, port, LineClient())
        client.send("alice", "carol", "bob")
        yield client.waitForLine("bob: 555-0199")
        self.assertEqual(client.lines(), ["alice: 555-0100", "carol: not found", "bob: 555-0199"])
        client.transport.loseConnection()
        yield client.whenLost()

    @inlineCallbacks
    def test_phonebookInTaskPool(self) -> Any:
        """
        "twistd -n txgetty --app phonebook:newSession --task-pool 4" (here
        on a free port, without RPC) answers in order, from the pool's
        worker threads.
        """
        self.assertIn("$ twistd -n txgetty --app phonebook:newSession --task-pool 4\n",
                      (DOCS / "flow-control.md").read_text(encoding="utf-8"))
        watcher = spawn(
            self,
            [twistdPath(), "-n", "--pidfile=", "txgetty", "--no-rpc", "--app", "phonebook:newSession",
             "--task-pool", "4", "--listen", "tcp:0:interface=127.0.0.1"],
            cwd=str(self.directory),
        )
        match = yield watcher.waitForOutput(LISTENING)
        yield self.askPhoneBook(int(match.group(1)))
        yield stopAndCheck(self, watcher)
        self.assertTrue((self.directory / "phonebook.db").exists())

    @inlineCallbacks
    def test_phonebookTac(self) -> Any:
        """
        "PYTHONPATH=. twistd -ny phonebook.tac" serves the phone book with
        the queries in its own pool (TaskPool.run) and stops cleanly.
        """
        watcher = spawn(self, [twistdPath(), "-n", "--pidfile=", "-y", "phonebook.tac"],
                        cwd=str(self.directory), pythonPath=["."])
        match = yield watcher.waitForOutput(LISTENING)
        yield self.askPhoneBook(int(match.group(1)))
        yield stopAndCheck(self, watcher)

    @inlineCallbacks
    def test_feedRespectsWritability(self) -> Any:
        """
        The feed sends numbered lines in order; when its client stops
        reading, the session becomes unwritable and stays open with about
        writeHighMark bytes waiting; when the client reads again, the
        numbering goes on without a gap.
        """
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        from ..support.examples import WAIT, connectClient

        feed = loadModule(self.directory / "feed.py", "txgetty_doc_feed")
        server, port = yield startServer(self, feed.newSession)

        class Counter(Protocol):
            """
            Checks the numbering as lines arrive; counts them.
            """

            count = 0
            partial = b""
            lostReason = None

            def __init__(self) -> None:
                self.lost = Deferred()

            def dataReceived(self, data: bytes) -> None:
                lines = (self.partial + data).split(b"\n")
                self.partial = lines.pop()
                for line in lines:
                    assert line == b"line %d" % self.count, (line, self.count)
                    self.count += 1

            def connectionLost(self, reason: Any = None) -> None:
                self.lostReason = reason
                self.lost.callback(None)

            def whenLost(self) -> Any:
                return bounded(self.lost, "the feed client's connection to close")

        @inlineCallbacks
        def waitFor(condition: Any, what: str) -> Any:
            for _ in range(int(WAIT / 0.02)):
                if condition():
                    return
                yield deferLater(reactor, 0.02, lambda: None)
            raise AssertionError(f"timed out waiting for {what}")

        client = yield connectClient(self, port, Counter())
        yield waitFor(lambda: client.count > 10000, "10000 lines")
        [session] = server.sessions()
        client.transport.pauseProducing()
        yield waitFor(lambda: not session.isWritable(), "the session to be unwritable")
        yield deferLater(reactor, 0.3, lambda: None)
        self.assertFalse(session.isWritable())
        self.assertLessEqual(session.pendingBytes, session.writeHighMark + 20)
        self.assertEqual(session.state, "OPEN")
        before = client.count
        client.transport.resumeProducing()
        yield waitFor(lambda: client.count > before + 100000, "the feed to go on")
        self.assertEqual(session.state, "OPEN")


class FlowControlReferenceTests(SynchronousTestCase):
    """
    The settings table of docs/flow-control.md agrees with SessionConfig.
    """

    def test_settingsTable(self) -> None:
        """
        Every flow-control setting has one row with SessionConfig's default.
        """
        text = (DOCS / "flow-control.md").read_text(encoding="utf-8")
        defaults = {f.name: f.default for f in fields(SessionConfig)}
        for name in ("writeHighMark", "writeLowMark", "maxPendingBytes", "pauseReadingWhenUnwritable",
                     "backlogHighMark", "backlogLowMark", "writeTimeout", "maxPacketsPerTurn"):
            rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
            self.assertEqual(len(rows), 1, name)
            self.assertIn(f"| `{defaults[name]!r}` |", rows[0])


class RawWebSocket(Protocol):
    """
    A bare WebSocket client (no library): it sends the upgrade request,
    then lets the test send frames of its choice.  It answers a close frame
    with a close frame, and never answers pings.

    @ivar received: every byte received after the upgrade response.
    @ivar frames: the C{(opcode, payload)} of each frame received.
    """

    def __init__(self, path: bytes = b"/") -> None:
        """
        @param path: the path to ask for.
        """
        self.path = path
        self.upgraded: Deferred = Deferred()
        self.lost: Deferred = Deferred()
        self.buffer = b""
        self.received = b""
        self.frames: list[tuple[int, bytes]] = []

    def connectionMade(self) -> None:
        """
        Ask for the upgrade.
        """
        key = base64.b64encode(os.urandom(16))
        self.transport.write(
            b"GET " + self.path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def dataReceived(self, data: bytes) -> None:
        """
        @param data: the upgrade response, then frames.
        """
        if not self.upgraded.called:
            self.buffer += data
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            assert head.startswith(b"HTTP/1.1 101"), head
            self.buffer = b""
            self.upgraded.callback(self)
            data = rest
        self.received += data
        self.buffer += data
        while len(self.buffer) >= 2:
            opcode, length, start = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                (length,), start = struct.unpack(">H", self.buffer[2:4]), 4
            if len(self.buffer) < start + length:
                return
            payload, self.buffer = self.buffer[start:start + length], self.buffer[start + length:]
            self.frames.append((opcode, payload))
            if opcode == 8:
                self.sendFrame(8, payload[:2])

    def sendFrame(self, opcode: int, payload: bytes) -> None:
        """
        Send one masked frame with the FIN bit (payloads under 126 bytes).

        @param opcode: the frame's opcode.
        @param payload: its payload.
        """
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def connectionLost(self, reason: Any = None) -> None:
        """
        @param reason: why the connection ended.
        """
        self.lost.callback(None)


class TransportsBehaviourTests(TestCase):
    """
    What docs/transports.md says of WebSocket and UDP sessions, checked
    over real sockets on 127.0.0.1.
    """

    timeout = 60

    @inlineCallbacks
    def serve(self, url: str, **config: Any) -> Any:
        """
        Serve a recording listener with the hello codec on one listener.

        @param url: the listener.
        @param config: L{SessionConfig} fields.
        @return: a L{Deferred} firing with C{(server, port, listeners)}:
            C{listeners} gets the listener of each new session.
        """
        from twisted.internet import reactor

        from txgetty import HelloCodec, Server

        listeners: list[RecordingListener] = []

        def newSession(session: Any) -> None:
            session.codec = HelloCodec()
            session.listener = RecordingListener()
            listeners.append(session.listener)

        server = Server([url], newSession, reactor=reactor, config=SessionConfig(**config))
        server.startService()
        self.addCleanup(lambda: bounded(server.stopService(), "the server to stop"))
        [address] = yield bounded(server.whenListening(), "the server to listen")
        return server, address.port, listeners

    @inlineCallbacks
    def rawClient(self, port: int) -> Any:
        """
        @param port: a ws:// listener's port.
        @return: a L{Deferred} firing with an upgraded L{RawWebSocket},
            disconnected by the test's cleanup.
        """
        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

        client = yield bounded(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), RawWebSocket()),
                               "a TCP connection")

        def disconnect() -> Any:
            if not client.lost.called:
                client.transport.abortConnection()
            return bounded(client.lost, "the raw client to disconnect")

        self.addCleanup(disconnect)
        yield bounded(client.upgraded, "the upgrade")
        return client

    @inlineCallbacks
    def whenGone(self, server: Any) -> Any:
        """
        @param server: a server with one session.
        @return: a L{Deferred} firing with that session once it is gone.
        """
        [session] = server.sessions()
        yield bounded(session.whenClosed(), "the session to end")
        return session

    @inlineCallbacks
    def test_oversizeMessage(self) -> Any:
        """
        A message above maxMsgLen: onError gets a PacketTooLargeError and
        the peer gets a close frame with code 1009.
        """
        server, port, listeners = yield self.serve("ws://127.0.0.1:0/", maxMsgLen=100)
        client = yield self.rawClient(port)
        client.sendFrame(2, b"x" * 120)
        session = yield self.whenGone(server)
        self.assertEqual(listeners[0].names(), ["open", "error", "close"])
        self.assertTrue(session.closeReason.check(PacketTooLargeError))
        self.assertIn("close code 1009", session.closeReason.getErrorMessage())
        yield bounded(client.lost, "the raw client's connection to end")
        self.assertEqual(client.frames[0][0], 8)
        self.assertEqual(client.frames[0][1][:2], struct.pack(">H", 1009))

    @inlineCallbacks
    def test_gettyClose(self) -> Any:
        """
        getty's close frame (payload "bye-bye!!!", no status code) ends the
        session as a clean close: onClose alone, closeReason ConnectionDone.
        """
        from twisted.internet.error import ConnectionDone

        server, port, listeners = yield self.serve("ws://127.0.0.1:0/")
        client = yield self.rawClient(port)
        client.sendFrame(8, b"bye-bye!!!")
        session = yield self.whenGone(server)
        self.assertEqual(listeners[0].names(), ["open", "close"])
        self.assertTrue(session.closeReason.check(ConnectionDone))

    @inlineCallbacks
    def test_protocolViolation(self) -> Any:
        """
        A frame with a reserved opcode: txgetty closes with 1002, and the
        session ends with onError and WebSocketClosedError(1002).
        """
        from txgetty.errors import WebSocketClosedError

        server, port, listeners = yield self.serve("ws://127.0.0.1:0/")
        client = yield self.rawClient(port)
        client.sendFrame(3, b"?")
        session = yield self.whenGone(server)
        self.assertEqual(listeners[0].names(), ["open", "error", "close"])
        self.assertTrue(session.closeReason.check(WebSocketClosedError))
        self.assertEqual(session.closeReason.value.code, 1002)
        yield bounded(client.lost, "the raw client's connection to end")
        self.assertEqual(client.frames[-1][1][:2], struct.pack(">H", 1002))

    @inlineCallbacks
    def test_deadPeer(self) -> Any:
        """
        A peer that answers no ping: at the cron tick after the ping,
        onError gets a DeadPeerError and the session closes with code 1008.
        """
        from txgetty.errors import DeadPeerError

        server, port, listeners = yield self.serve("ws://127.0.0.1:0/", cronPeriod=0.3)
        client = yield self.rawClient(port)
        session = yield self.whenGone(server)
        yield bounded(client.lost, "the raw client's connection to end")
        self.assertTrue(session.closeReason.check(DeadPeerError))
        # The first tick pings (and runs onCron); the next finds no pong.
        self.assertEqual(listeners[0].names(), ["open", "cron", "error", "close"])
        self.assertEqual(client.frames[0], (9, b""))  # the ping
        self.assertEqual(client.frames[-1][0], 8)
        self.assertEqual(client.frames[-1][1][:2], struct.pack(">H", 1008))

    @inlineCallbacks
    def test_udpRefusal(self) -> Any:
        """
        A connected-UDP client whose server port is closed: the session
        gets onError with a ConnectionRefusedError naming ICMP, and closes.
        """
        import socket

        from twisted.internet import reactor
        from twisted.internet.error import ConnectionRefusedError

        from txgetty import Client, HelloCodec
        from txgetty.client.reconnect import ReconnectPolicy

        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        listener = RecordingListener()

        def newSession(session: Any) -> None:
            session.codec = HelloCodec()
            session.listener = listener

        client = Client(f"udp:127.0.0.1:{port}", newSession, reactor=reactor,
                        reconnect=ReconnectPolicy(maxAttempts=1))
        client.startService()
        self.addCleanup(lambda: bounded(client.stopService(), "the client to stop"))
        session = yield bounded(client.whenConnected(), "the UDP session")
        session.writePkg(b"anyone?")
        yield bounded(session.whenClosed(), "the refusal")
        self.assertEqual(listener.names(), ["open", "error", "close"])
        self.assertTrue(listener.errors[0].check(ConnectionRefusedError))
        self.assertIn("ICMP port unreachable", listener.errors[0].getErrorMessage())


def headingAnchors(path: Path) -> set[str]:
    """
    @param path: a Markdown file.
    @return: the anchors of its headings, as GitHub makes them (lower case,
        punctuation dropped, spaces to hyphens).
    """
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL | re.MULTILINE)
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


class LinkTests(SynchronousTestCase):
    """
    The links of and to docs/transports.md and docs/flow-control.md lead
    somewhere.
    """

    def test_links(self) -> None:
        """
        Every relative link in transports.md and flow-control.md, and every
        link to them from README.md and the other pages, names an existing
        file and, after C{#}, one of its headings; README.md and
        options.md link both pages.
        """
        pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
        ours = {"transports.md", "flow-control.md"}
        checked = []
        for page in pages:
            for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
                if page == ROOT / "README.md":  # absolute links into the repository
                    target = re.sub(rf"^{re.escape(repository())}/(blob|tree)/main/", "", target)
                if "://" in target:
                    continue
                path, _, anchor = target.partition("#")
                resolved = (page.parent / path).resolve() if path else page
                if page.name not in ours and resolved.name not in ours:
                    continue
                checked.append((page.name, target))
                self.assertTrue(resolved.exists(), f"{page.name} links {target}: no such file")
                if anchor:
                    self.assertIn(anchor, headingAnchors(resolved), f"{page.name} links {target}: no such heading")
        for page, target in (("README.md", "docs/transports.md"), ("README.md", "docs/flow-control.md"),
                             ("options.md", "transports.md"), ("options.md", "flow-control.md")):
            self.assertIn((page, target), checked)
