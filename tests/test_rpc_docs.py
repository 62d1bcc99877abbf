"""
Keep the RPC documentation true.

C{docs/rpc.md}: its files are written out and run as the page says (the
service under C{twistd -n txgetty --service calc:Calc}, the client script,
C{txgetty call}, the same server with C{--rpc-auth}/C{--rpc-hook} and as a
C{.tac} with auth and hooks), and its signature blocks and option tables
are checked against the code.

C{docs/rpc-protocol.md}: the worked hex example is what txgetty's encoder,
client and server produce, and a client written from the page alone (only
C{struct}, C{json} and C{socket}, run in an interpreter that cannot import
txgetty) talks to a real L{RpcServer}.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import Factory
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty.rpc import RpcClient, RpcServer, registerBuiltins
from txgetty.rpc.frame import REQUEST, Frame, decodeHead, responseBytes
from txgetty.rpc.serializers import JSON, NONE
from txgetty.tap import Options

from .test_docs import DOCS, codeBlocks, docFiles, writeFiles
from .test_examples import Collector, bounded, connectClient, spawn, stopAndCheck, twistdPath

#: The RPC server's listening line in twistd's log (the packet server's
#: lines start with "txgetty:" instead).
RPC_LISTENING = rb"txgetty rpc: listening on tcp:127\.0\.0\.1:(\d+)"


def documentedOutput(doc: str, command: str) -> tuple[str, int]:
    """
    @param doc: a file name in C{docs/}.
    @param command: a command shown as C{$ COMMAND} in a C{sh} block.
    @return: the lines the page shows after it (up to the next C{$} line or
        the end of the block), with a final newline, and how many there are.
    """
    for _, block in codeBlocks(doc, "sh"):
        lines = block.splitlines()
        if f"$ {command}" in lines:
            start = lines.index(f"$ {command}") + 1
            out = []
            for line in lines[start:]:
                if line.startswith("$ "):
                    break
                out.append(line)
            return "".join(line + "\n" for line in out), len(out)
    raise AssertionError(f"{doc} shows no '$ {command}'")


def logLinePattern(line: str) -> bytes:
    """
    @param line: a log line a page shows, naming a session as
        C{<tcp-session#3 OPEN tcp:127.0.0.1:50612>}.
    @return: a regular expression matching that line with any session
        number and client port.
    """
    pattern = re.escape(line)
    pattern = re.sub(r"session\\#\d+", r"session\\#\\d+", pattern)
    pattern = re.sub(r"127\\\.0\\\.0\\\.1:\d+", r"127\\.0\\.0\\.1:\\d+", pattern)
    return pattern.encode()


def txgettyCommand() -> str:
    """
    @return: the C{txgetty} script installed next to the running Python.
    """
    return str(Path(sys.executable).parent / "txgetty")


@inlineCallbacks
def runToEnd(testCase: TestCase, argv: list[str], cwd: Path, what: str, **kw: Any) -> Any:
    """
    Run a command to its end.

    @param testCase: the test (its cleanup stops the process if needed).
    @param argv: the command.
    @param cwd: its directory.
    @param what: a description for failure messages.
    @param kw: more L{spawn} arguments.
    @return: a L{Deferred} firing with C{(exit reason, output text)}.
    """
    watcher = spawn(testCase, argv, cwd=str(cwd), **kw)
    reason = yield bounded(watcher.whenEnded(), what, 30)
    return reason, watcher.output.decode()


# -- docs/rpc.md ---------------------------------------------------------------------


def signatureBlock(doc: str, name: str) -> tuple[list[str], dict[str, Any]]:
    """
    @param doc: a file name in C{docs/}.
    @param name: a class name whose call signature the page shows in a
        python block starting with C{NAME(}.
    @return: the required parameters and the defaults of the others.
    """
    for _, block in codeBlocks(doc):
        if block.startswith(f"{name}("):
            call = ast.parse(block.replace("*, ", ""), mode="eval").body
            assert isinstance(call, ast.Call)
            required = [arg.id for arg in call.args if isinstance(arg, ast.Name)]
            return required, {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    raise AssertionError(f"{doc} has no signature block of {name}")


def tableRows(doc: str, first: str) -> list[str]:
    """
    @param doc: a file name in C{docs/}.
    @param first: the text of a table row's first cell.
    @return: every row of the page whose first cell is exactly that.
    """
    text = (DOCS / doc).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.startswith(f"| {first} |")]


def argumentTable(doc: str, name: str) -> dict[str, str]:
    """
    @param doc: a file name in C{docs/}.
    @param name: a class with a section headed C{## `NAME`}.
    @return: the rows of the first C{| argument | default | meaning |}
        table of that section, by argument name.
    """
    text = (DOCS / doc).read_text(encoding="utf-8")
    section = text.split(f"## `{name}`\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("| argument | default | meaning |\n", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[1:]:
        argument = line.split("|")[1].strip().strip("`")
        assert argument not in rows, f"{name}: two rows for {argument}"
        rows[argument] = line
    return rows


class RpcPageTests(SynchronousTestCase):
    """
    The shape of docs/rpc.md and its agreement with the code.
    """

    def test_files(self) -> None:
        """
        The page's files are calc.py, calc_client.py and calc.tac, and each
        compiles.
        """
        files = docFiles("rpc.md")
        self.assertEqual(sorted(files), ["calc.py", "calc.tac", "calc_client.py", "calc_hooks.py"])
        for name, code in files.items():
            compile(code, name, "exec")

    def test_signatures(self) -> None:
        """
        The RpcServer and RpcClient signature blocks name exactly the
        constructors' parameters, with their defaults; the argument table
        below each block has one row per parameter, in order, and where a
        row shows a literal default, it is the code's.
        """
        for cls in (RpcServer, RpcClient):
            parameters = list(inspect.signature(cls).parameters.values())
            required, defaults = signatureBlock("rpc.md", cls.__name__)
            self.assertEqual(required, [p.name for p in parameters if p.default is inspect.Parameter.empty])
            self.assertEqual(defaults, {p.name: p.default for p in parameters
                                        if p.default is not inspect.Parameter.empty})
            rows = argumentTable("rpc.md", cls.__name__)
            self.assertEqual(list(rows), [p.name for p in parameters])
            for p in parameters:
                if p.default is not inspect.Parameter.empty and p.default is not None:
                    shown = repr(p.default).replace("'", '"')
                    default = rows[p.name].split("|")[2]
                    self.assertIn(f"`{shown}`", default, f"{cls.__name__}({p.name})")

    def test_twistdOptions(self) -> None:
        """
        The page's twistd table shows the RPC options of twistd txgetty with
        their defaults.
        """
        text = (DOCS / "rpc.md").read_text(encoding="utf-8")
        for name, _, default, *_ in Options.optParameters:
            if name.startswith("rpc-"):
                rows = [line for line in text.splitlines() if line.startswith(f"| `--{name} ")]
                self.assertEqual(len(rows), 1, name)
                self.assertIn("| none |" if default is None else f"`{default}`", rows[0])
        for row in ("`--rpc-listen ENDPOINT`", "`--rpc-hook MODULE:OBJECT`", "`--service [NAME=]MODULE:OBJECT`",
                    "`--no-rpc`", "`--rpc-demo`"):
            self.assertEqual(len(tableRows("rpc.md", row)), 1, row)


class TutorialTests(TestCase):
    """
    docs/rpc.md, pasted and run as it says.
    """

    timeout = 90

    def setUp(self) -> None:
        """
        Write the page's files into a fresh directory.
        """
        self.directory = writeFiles(Path(self.mktemp()), docFiles("rpc.md"))

    @inlineCallbacks
    def runClient(self, port: int, *extra: str) -> Any:
        """
        Run calc_client.py against a port and check it printed what the page
        shows.

        @param port: the RPC port.
        @param extra: more arguments (the token).
        @return: a L{Deferred} firing once checked.
        """
        expected, _ = documentedOutput("rpc.md", "python calc_client.py")
        reason, output = yield runToEnd(
            self, [sys.executable, "calc_client.py", f"127.0.0.1:{port}", *extra], self.directory,
            "calc_client.py to finish",
        )
        self.assertIsInstance(reason, ProcessDone, output)
        self.assertEqual(output, expected)

    @inlineCallbacks
    def test_twistdService(self) -> Any:
        """
        "twistd -n txgetty --service calc:Calc", run in the directory of the
        page's calc.py (on free ports), serves Calc: calc_client.py prints
        exactly the lines the page shows (call, proxy, kwargs, the blocking
        method, the remote error with its code, the timeout, the
        cancellation), and "txgetty call ... Calc.add 1 2" prints 3, and
        Calc.divide 1 0 prints the documented error with exit status 1.
        """
        watcher = spawn(
            self,
            [twistdPath(), "-n", "--pidfile=", "txgetty", "--service", "calc:Calc",
             "--listen", "tcp:0:interface=127.0.0.1", "--rpc-listen", "tcp:0:interface=127.0.0.1"],
            cwd=str(self.directory),
        )
        match = yield watcher.waitForOutput(RPC_LISTENING)
        port = int(match.group(1))
        yield self.runClient(port)

        expected, _ = documentedOutput("rpc.md", "txgetty call 127.0.0.1:8091 Calc.add 1 2")
        reason, output = yield runToEnd(
            self, [txgettyCommand(), "call", f"127.0.0.1:{port}", "Calc.add", "1", "2"], self.directory,
            "txgetty call to finish",
        )
        self.assertIsInstance(reason, ProcessDone, output)
        self.assertEqual((output, expected), ("3\n", "3\n"))

        expected, _ = documentedOutput("rpc.md", "txgetty call 127.0.0.1:8091 Calc.divide 1 0")
        reason, output = yield runToEnd(
            self, [txgettyCommand(), "call", f"127.0.0.1:{port}", "Calc.divide", "1", "0"], self.directory,
            "txgetty call to finish",
        )
        self.assertIsInstance(reason, ProcessTerminated, output)
        self.assertEqual(reason.exitCode, 1)
        self.assertEqual(output, expected)
        text = (DOCS / "rpc.md").read_text(encoding="utf-8")
        logged = [line for line in text.splitlines() if line.startswith("[txgetty.rpc.server#info] ")]
        self.assertEqual(len(logged), 1)
        yield watcher.waitForOutput(logLinePattern(logged[0]))
        self.assertNotIn(b"Traceback", watcher.output)
        yield stopAndCheck(self, watcher)

    @inlineCallbacks
    def checkAuthAndHooks(self, watcher: Any, port: int) -> Any:
        """
        Check a Calc server with the page's token check and call log:
        calc_client.py with the token prints the documented lines; the log
        shows the calls as the page does, the cancelled ones with
        CancelledError and the trace id; txgetty call without --auth gets
        AuthError, with it the result.

        @param watcher: the server process.
        @param port: its RPC port.
        @return: a L{Deferred} firing once checked.
        """
        yield self.runClient(port, "s3cret")
        yield watcher.waitForOutput(rb"\[calc#info\] Calc\.add #1: ok in [\d.]+ ms, trace-id -")
        yield watcher.waitForOutput(rb"\[calc#info\] Calc\.sleep #5: CancelledError in [\d.]+ ms, trace-id -")
        yield watcher.waitForOutput(rb"\[calc#info\] Calc\.sleep #6: CancelledError in [\d.]+ ms, trace-id demo-1")

        command = [txgettyCommand(), "call", f"127.0.0.1:{port}", "Calc.add", "1", "2"]
        reason, output = yield runToEnd(self, command, self.directory, "txgetty call to finish")
        self.assertIsInstance(reason, ProcessTerminated, output)
        self.assertIn("RemoteError: AuthError: the first request of the connection carries no auth token", output)
        reason, output = yield runToEnd(self, command + ["--auth", "guess"], self.directory, "txgetty call to finish")
        self.assertIsInstance(reason, ProcessTerminated, output)
        self.assertIn("RemoteError: AuthError: the auth token was refused", output)
        text = (DOCS / "rpc.md").read_text(encoding="utf-8")
        [logged] = [line for line in text.splitlines() if line.startswith("[txgetty.rpc.server#warn] ")]
        yield watcher.waitForOutput(logLinePattern(logged))
        self.assertNotIn(b"guess", watcher.output)
        self.assertNotIn(b"s3cret", watcher.output)
        reason, output = yield runToEnd(self, command + ["--auth", "s3cret"], self.directory, "txgetty call to finish")
        self.assertIsInstance(reason, ProcessDone, output)
        self.assertEqual(output, "3\n")

    @inlineCallbacks
    def test_twistdAuthAndHooks(self) -> Any:
        """
        The page's "twistd -n txgetty --service calc:Calc --rpc-auth ...
        --rpc-hook ... --rpc-compressor zlib" (on free ports), run in the
        directory of calc.py and calc_hooks.py, checks the token and logs
        every call as the page shows.
        """
        prefix = "twistd -n txgetty --service calc:Calc --rpc-auth "
        [line] = [line for _, block in codeBlocks("rpc.md", "sh") for line in block.splitlines()
                  if line.startswith(prefix)]
        arguments = line.split()[3:]
        self.assertIn("--rpc-hook", arguments)
        watcher = spawn(
            self,
            [twistdPath(), "-n", "--pidfile=", "txgetty", *arguments,
             "--listen", "tcp:0:interface=127.0.0.1", "--rpc-listen", "tcp:0:interface=127.0.0.1"],
            cwd=str(self.directory),
        )
        match = yield watcher.waitForOutput(RPC_LISTENING)
        yield self.checkAuthAndHooks(watcher, int(match.group(1)))
        yield stopAndCheck(self, watcher)

    @inlineCallbacks
    def test_tac(self) -> Any:
        """
        "PYTHONPATH=. twistd -ny calc.tac" (on a free port) serves Calc with
        the token check and the logging hook, as checkAuthAndHooks says.
        """
        tac = self.directory / "calc.tac"
        code = tac.read_text(encoding="utf-8")
        self.assertIn('"tcp:8091:interface=127.0.0.1"', code)
        tac.write_text(code.replace('"tcp:8091:interface=127.0.0.1"', '"tcp:0:interface=127.0.0.1"'))
        watcher = spawn(self, [twistdPath(), "-n", "--pidfile=", "-y", "calc.tac"], cwd=str(self.directory),
                        pythonPath=["."])
        match = yield watcher.waitForOutput(RPC_LISTENING)
        yield self.checkAuthAndHooks(watcher, int(match.group(1)))
        yield stopAndCheck(self, watcher)


# -- docs/rpc-protocol.md: the worked example -------------------------------------------

HEX_LINE = re.compile(r"((?:[0-9a-f]{2} )*[0-9a-f]{2})(?: {2,}|$)")


def documentedFrames() -> tuple[bytes, bytes]:
    """
    @return: the bytes of the worked example's request and response, read
        from the C{hex} blocks of docs/rpc-protocol.md (each line: hex bytes,
        two or more spaces, a comment).
    """
    frames = []
    for _, block in codeBlocks("rpc-protocol.md", "hex"):
        data = b""
        for line in block.splitlines():
            match = HEX_LINE.match(line)
            assert match is not None, f"not a hex line: {line!r}"
            data += bytes.fromhex(match.group(1))
        frames.append(data)
    assert len(frames) == 2, f"expected 2 hex blocks, got {len(frames)}"
    return frames[0], frames[1]


def startRpcServer(testCase: TestCase, *services: Any, **kw: Any) -> Any:
    """
    Start an L{RpcServer} with the built-in services on 127.0.0.1, port 0,
    stopped by the test's cleanup.

    @param testCase: the test.
    @param services: more service objects.
    @param kw: more L{RpcServer} arguments.
    @return: a L{Deferred} firing with C{(server, port)}.
    """
    server = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor, **kw)
    registerBuiltins(server)
    for service in services:
        server.register(service)
    server.startService()
    testCase.addCleanup(lambda: bounded(server.stopService(), "the RPC server to stop"))
    return bounded(server.whenListening(), "the RPC server to listen").addCallback(
        lambda addresses: (server, addresses[0].port)
    )


class WorkedExampleTests(TestCase):
    """
    The worked hex example of docs/rpc-protocol.md is what txgetty produces.
    """

    timeout = 30

    def test_encoder(self) -> None:
        """
        The documented request is txgetty's encoding of a request frame
        calling Echo.echo("hi") with request id 1 (51 bytes, as annotated),
        and the response its encoding of the response "hi" (20 bytes); the
        decoded head map is service=Echo, method=echo.
        """
        request, response = documentedFrames()
        frame = Frame(REQUEST, 1, {"service": "Echo", "method": "echo"}, b'["hi"]', JSON, NONE)
        self.assertEqual(request, frame.encode())
        self.assertEqual(response, responseBytes(1, b'"hi"', JSON, NONE))
        self.assertEqual((len(request), len(response)), (51, 20))
        self.assertEqual(decodeHead(request[16:45]), {"service": "Echo", "method": "echo"})

    @inlineCallbacks
    def test_clientSendsIt(self) -> Any:
        """
        RpcClient.call("Echo.echo", "hi", timeout=None) on a fresh
        connection sends exactly the documented request bytes, and the
        documented response bytes complete the call with "hi".
        """
        request, response = documentedFrames()
        received: Deferred = Deferred()

        class Peer(Collector):
            def connectionMade(self) -> None:
                """
                Let the test talk to the client's connection.
                """
                received.callback(self)

        port = reactor.listenTCP(0, Factory.forProtocol(Peer), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = RpcClient(f"127.0.0.1:{port.getHost().port}", reactor=reactor)
        client.startService()
        self.addCleanup(lambda: bounded(client.stopService(), "the client to stop"))
        call = client.call("Echo.echo", "hi", timeout=None)
        peer = yield bounded(received, "the client to connect")
        yield peer.waitUntil(lambda: len(peer.data) >= len(request), "the request")
        self.assertEqual(peer.data, request)
        peer.transport.write(response)
        result = yield bounded(call, "the call's result")
        self.assertEqual(result, "hi")

    @inlineCallbacks
    def test_serverAnswersIt(self) -> Any:
        """
        An RpcServer answers the documented request bytes with exactly the
        documented response bytes; with the method named "nope" instead, it
        answers with the documented error head map and no body.
        """
        request, response = documentedFrames()
        server, port = yield startRpcServer(self)
        peer = yield connectClient(self, port, Collector())
        peer.transport.write(request)
        yield peer.waitUntil(lambda: len(peer.data) >= len(response), "the response")
        self.assertEqual(peer.data, response)

        text = (DOCS / "rpc-protocol.md").read_text(encoding="utf-8")
        message = re.search(r"`error-message` =\s+`(.*?)`", text, re.S).group(1)
        peer.data = b""
        peer.transport.write(Frame(REQUEST, 2, {"service": "Echo", "method": "nope"}, b'["hi"]').encode())
        yield peer.waitUntil(lambda: len(peer.data) >= 16 and len(peer.data) >= int.from_bytes(peer.data[3:7], "big"),
                             "the error response")
        headLength = int.from_bytes(peer.data[7:9], "big")
        self.assertEqual(len(peer.data), headLength)  # no body
        self.assertEqual(decodeHead(peer.data[16:headLength]),
                         {"status": "error", "error-type": "NoSuchMethod", "error-message": message})


# -- docs/rpc-protocol.md: an independent client -----------------------------------------

#: A client written from docs/rpc-protocol.md alone.  It reads the port from
#: stdin, runs its steps against the server and prints one JSON line per
#: step.  It is run with C{python -I -S}: no site-packages, so neither
#: txgetty nor Twisted could even be imported.
INDEPENDENT_CLIENT = r'''
import json
import socket
import struct

HEADER = struct.Struct(">HBIHBBBI")  # magic, version, full, head, type, ser, comp, id


def text(s):
    data = s.encode("utf-8")
    return struct.pack(">H", len(data)) + data


def frame(kind, requestId, head=None, body=b"", magic=0xDADA):
    headMap = b"".join(text(k) + text(v) for k, v in (head or {}).items())
    headLength = 16 + len(headMap)
    return HEADER.pack(magic, 1, headLength + len(body), headLength, kind, 1, 0, requestId) + headMap + body


def request(kind, requestId, service, method, args=None, **extra):
    head = {"service": service, "method": method}
    head.update(extra)
    body = b"" if args is None else json.dumps(args).encode("utf-8")
    return frame(kind, requestId, head, body)


def exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("closed")
        data += chunk
    return data


def receive(sock):
    magic, version, full, headLength, kind, ser, comp, requestId = HEADER.unpack(exactly(sock, 16))
    assert (magic, version) == (0xDADA, 1), (magic, version)
    rest = exactly(sock, full - 16)
    headMap, body = rest[:headLength - 16], rest[headLength - 16:]
    head, off = {}, 0
    while off < len(headMap):
        entry = []
        for _ in range(2):
            (n,) = struct.unpack_from(">H", headMap, off)
            entry.append(headMap[off + 2:off + 2 + n].decode("utf-8"))
            off += 2 + n
        head[entry[0]] = entry[1]
    return {"type": kind, "id": requestId, "serializer": ser, "compressor": comp, "head": head,
            "body": json.loads(body) if body else None, "bodyLength": len(body)}


def report(step, **values):
    print(json.dumps(dict(step=step, **values)), flush=True)


def silence(sock, seconds):
    sock.settimeout(seconds)
    try:
        data = sock.recv(1)
    except socket.timeout:
        return True
    finally:
        sock.settimeout(10)
    return not data and "closed"


port = int(input())
sock = socket.create_connection(("127.0.0.1", port), timeout=10)
sock.sendall(frame(3, 7))
report("heartbeat", frame=receive(sock))
sock.sendall(request(0, 1, "Echo", "echo", ["hi"]))
report("echo", frame=receive(sock))
sock.sendall(request(0, 2, "Echo", "echo", {"args": [], "kwargs": {"value": {"nested": [1, 2]}}}))
report("kwargs", frame=receive(sock))
sock.sendall(request(0, 3, "Ping", "ping"))
report("ping", frame=receive(sock))
sock.sendall(request(0, 4, "Status", "status", []))
report("status", frame=receive(sock))
sock.sendall(request(0, 5, "Echo", "nope", ["hi"]))
report("no method", frame=receive(sock))
sock.sendall(request(0, 6, "Nope", "echo", ["hi"]))
report("no service", frame=receive(sock))
sock.sendall(request(2, 8, "Recorder", "note", ["one-way"]) + request(0, 9, "Ping", "ping", []))
report("oneway then ping", frame=receive(sock))
sock.sendall(request(0, 10, "Sleeper", "sleep", [0.3], **{"timeout-ms": "50"}))
report("deadline", silent=silence(sock, 0.8))
sock.sendall(request(0, 11, "Sleeper", "sleep", [0.3]) + frame(5, 11))
report("cancel", silent=silence(sock, 0.8))
sock.sendall(frame(3, 12))
report("heartbeat again", frame=receive(sock))
sock.close()

sock = socket.create_connection(("127.0.0.1", port), timeout=10)
sock.sendall(frame(0, 1, {"service": "Ping", "method": "ping"}, magic=0xBEEF))
try:
    closed = sock.recv(1) == b""
except ConnectionResetError:
    closed = True
report("bad magic", closed=closed)
sock.close()
'''


class Recorder:
    """
    A service that remembers what it was told (the oneway's target).
    """

    def __init__(self) -> None:
        """
        Start with no notes.
        """
        self.notes: list[Any] = []

    def note(self, value: Any) -> None:
        """
        @param value: anything.
        """
        self.notes.append(value)


class Sleeper:
    """
    A service whose call stays in flight (for deadlines and cancels).
    """

    async def sleep(self, seconds: float) -> float:
        """
        @param seconds: how long.
        @return: C{seconds}, after that long.
        """
        await deferLater(reactor, seconds)
        return seconds


class Outcomes:
    """
    A hook recording each finished call's method and outcome type.
    """

    def __init__(self) -> None:
        """
        Start with nothing seen.
        """
        self.seen: list[tuple[str, str]] = []

    def afterCall(self, info: Any, result: Any) -> None:
        """
        @param info: the call's L{CallInfo <txgetty.rpc.CallInfo>}.
        @param result: its result or L{Failure}.
        """
        self.seen.append((info.method, type(result.value).__name__ if isinstance(result, Failure) else "ok"))


class IndependentClientTests(TestCase):
    """
    A client written from docs/rpc-protocol.md alone works with RpcServer.
    """

    timeout = 60

    def test_importsOnlyStructJsonSocket(self) -> None:
        """
        The independent client imports nothing but struct, json and socket.
        """
        imported = set()
        for node in ast.walk(ast.parse(INDEPENDENT_CLIENT)):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
        self.assertEqual(imported, {"struct", "json", "socket"})

    @inlineCallbacks
    def test_talksToServer(self) -> Any:
        """
        Against a real RpcServer, the independent client (in an interpreter
        without site-packages) gets: a heartbeat response with its request
        id; Echo.echo's result for a list body and for an
        {"args", "kwargs"} body; "pong" for an empty body; Status.status's
        services; NoSuchMethod and NoSuchService error heads with empty
        bodies; no answer to a oneway (the next frame answers the next
        request, and the server ran it); no answer to a call past its
        timeout-ms or to a cancelled call (both cancelled on the server);
        an open connection after all that; and a closed connection after a
        frame with a bad magic.
        """
        recorder, outcomes = Recorder(), Outcomes()
        server, port = yield startRpcServer(self, recorder, Sleeper(), hooks=[outcomes])
        directory = writeFiles(Path(self.mktemp()), {"independent_client.py": INDEPENDENT_CLIENT})
        watcher = spawn(self, [sys.executable, "-I", "-S", "independent_client.py"], cwd=str(directory))
        watcher.transport.write(f"{port}\n".encode())
        watcher.transport.closeStdin()
        reason = yield bounded(watcher.whenEnded(), "the independent client to finish", 30)
        output = watcher.output.decode()
        self.assertIsInstance(reason, ProcessDone, output)
        steps = {}
        for line in output.splitlines():
            record = json.loads(line)
            steps[record.pop("step")] = record

        def ok(step: str, requestId: int, body: Any) -> None:
            frame = steps[step]["frame"]
            self.assertEqual(
                (frame["type"], frame["id"], frame["serializer"], frame["compressor"], frame["head"], frame["body"]),
                (1, requestId, 1, 0, {}, body), step,
            )

        heartbeat = {"type": 4, "id": 7, "serializer": 1, "compressor": 0, "head": {}, "body": None, "bodyLength": 0}
        self.assertEqual(steps["heartbeat"]["frame"], heartbeat)
        ok("echo", 1, "hi")
        ok("kwargs", 2, {"nested": [1, 2]})
        ok("ping", 3, "pong")
        status = steps["status"]["frame"]["body"]
        self.assertEqual(status["services"]["Echo"], ["echo"])
        self.assertEqual(sorted(status["services"]), ["Echo", "Ping", "Recorder", "Sleeper", "Status"])
        for step, requestId, errorType in (("no method", 5, "NoSuchMethod"), ("no service", 6, "NoSuchService")):
            frame = steps[step]["frame"]
            self.assertEqual((frame["type"], frame["id"], frame["bodyLength"]), (1, requestId, 0))
            self.assertEqual((frame["head"]["status"], frame["head"]["error-type"]), ("error", errorType))
            self.assertTrue(frame["head"]["error-message"])
        ok("oneway then ping", 9, "pong")
        self.assertEqual(recorder.notes, ["one-way"])
        self.assertEqual(steps["deadline"], {"silent": True})
        self.assertEqual(steps["cancel"], {"silent": True})
        self.assertEqual(steps["heartbeat again"]["frame"], dict(heartbeat, id=12))
        self.assertEqual(steps["bad magic"], {"closed": True})
        self.assertEqual([s for s in outcomes.seen if s[0] == "sleep"],
                         [("sleep", "CancelledError"), ("sleep", "CancelledError")])
