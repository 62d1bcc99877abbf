"""
Keep the documentation true: run the code of C{docs/} the way a reader would
(files written out from the code blocks, run as the text says), and check the
reference tables of C{docs/options.md} and C{docs/contracts.md} against the
code.

Code blocks that are files start with a C{# file: NAME} line; every Python
block of C{getting-started.md} and C{testing.md} must be one.  Blocks that
hard-code port 8090 are run on a free port instead (port 0 for servers; a
command-line argument for the client).
"""

from __future__ import annotations

import re
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.internet.error import ProcessDone
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty import CodecError, PacketTooLargeError, SessionConfig
from txgetty import _state as S
from txgetty.tap import Options
from txgetty.testing import RecordingListener, connectedSessions, sessionOnStringTransport

from .test_examples import (
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

DOCS = ROOT / "docs"
FILE_HEADER = re.compile(r"# file: (\S+)\n")


def codeBlocks(doc: str, language: str = "python") -> list[tuple[str | None, str]]:
    """
    @param doc: a file name in C{docs/}.
    @param language: the fence's language.
    @return: C{(file name or None, code)} for each block, in order.
    """
    text = (DOCS / doc).read_text(encoding="utf-8")
    blocks = re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)
    out = []
    for block in blocks:
        match = FILE_HEADER.match(block)
        out.append((match.group(1) if match else None, block))
    return out


def docFiles(doc: str) -> dict[str, str]:
    """
    @param doc: a file name in C{docs/}.
    @return: the code of each C{# file:} block, by file name.
    """
    return {name: code for name, code in codeBlocks(doc) if name is not None}


def writeFiles(directory: Path, files: dict[str, str]) -> Path:
    """
    @param directory: where to write (created if needed).
    @param files: file contents by name.
    @return: C{directory}.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, code in files.items():
        (directory / name).write_text(code, encoding="utf-8")
    return directory


def onFreePort(code: str) -> str:
    """
    @param code: a document's code that listens on tcp port 8090.
    @return: the same code listening on port 0.
    """
    changed = code.replace('"tcp:8090:interface=127.0.0.1"', '"tcp:0:interface=127.0.0.1"')
    assert changed != code, "the code no longer listens on tcp:8090:interface=127.0.0.1"
    return changed


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
        watcher = spawn(self, [sys.executable, "-c", code], cwd=str(self.directory))
        reason = yield bounded(watcher.whenEnded(), "the import check to finish")
        self.assertIsInstance(reason, ProcessDone, watcher.output.decode())
        self.assertEqual(watcher.output, b"reactor imported: False\n")


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
        transitions of txgetty._state.TRANSITIONS.
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
