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

from pathlib import Path
from typing import Any
import ast
import inspect
import json
import re
import sys

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import Factory
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty.rpc import RpcClient, RpcServer, ServiceError, registerBuiltins
from txgetty.rpc.frame import Frame, REQUEST, decodeHead, responseBytes
from txgetty.rpc.serializers import JSON, NONE
from txgetty.tools.tap import Options

from ..support.docs import DOCS, codeBlocks, docFiles, writeFiles
from ..support.examples import Collector, bounded, connectClient, spawn, stopAndCheck, twistdPath


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


#: The helpers of the clients written from docs/rpc-protocol.md alone (only
#: C{struct}, C{json}, C{socket} and C{zlib}).  Each client reads the port
#: from stdin, runs its steps against the server and prints one JSON line
#: per step.  It is run with C{python -I -S}: no site-packages, so neither
#: txgetty nor Twisted could even be imported.
CLIENT_HELPERS = r'''
import json
import socket
import struct

HEADER = struct.Struct(">HBIHBBBI")  # magic, version, full, head, type, ser, comp, id


def text(s):
    data = s.encode("utf-8")
    return struct.pack(">H", len(data)) + data


def frame(kind, requestId, head=None, body=b"", magic=0xDADA, ser=1, comp=0):
    headMap = b"".join(text(k) + text(v) for k, v in (head or {}).items())
    headLength = 16 + len(headMap)
    return HEADER.pack(magic, 1, headLength + len(body), headLength, kind, ser, comp, requestId) + headMap + body


def request(kind, requestId, service, method, args=None, body=None, **extra):
    head = {"service": service, "method": method}
    head.update(extra)
    if body is None:
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
            "body": json.loads(body) if body and ser == 1 and not comp else None, "bodyLength": len(body),
            "raw": body.decode("latin-1")}


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
'''

#: The first client: the frame types, the head map, errors, deadlines,
#: cancels and a bad magic.
INDEPENDENT_CLIENT = CLIENT_HELPERS + r'''
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


@inlineCallbacks
def runIndependentClient(testCase: TestCase, script: str, port: int) -> Any:
    """
    Run an independent client against a port.

    @param testCase: the test (its cleanup stops the process if needed).
    @param script: the client's source.
    @param port: the server's port.
    @return: a L{Deferred} firing with its steps: the JSON lines it printed,
        by step name.
    """
    directory = writeFiles(Path(testCase.mktemp()), {"independent_client.py": script})
    watcher = spawn(testCase, [sys.executable, "-I", "-S", "independent_client.py"], cwd=str(directory))
    watcher.transport.write(f"{port}\n".encode())
    watcher.transport.closeStdin()
    reason = yield bounded(watcher.whenEnded(), "the independent client to finish", 45)
    output = watcher.output.decode()
    testCase.assertIsInstance(reason, ProcessDone, output)
    steps = {}
    for line in output.splitlines():
        record = json.loads(line)
        steps[record.pop("step")] = record
    return steps


class IndependentClientTests(TestCase):
    """
    A client written from docs/rpc-protocol.md alone works with RpcServer.
    """

    timeout = 60

    def test_importsOnlyStructJsonSocket(self) -> None:
        """
        The independent clients import nothing but struct, json and socket
        (and zlib, for the compressor of the same name).
        """
        for client, allowed in ((INDEPENDENT_CLIENT, {"struct", "json", "socket"}),
                                (RULES_CLIENT, {"struct", "json", "socket", "zlib"})):
            imported = set()
            for node in ast.walk(ast.parse(client)):
                if isinstance(node, ast.Import):
                    imported.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom):
                    imported.add(node.module or "")
            self.assertEqual(imported, allowed)


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
        steps = yield runIndependentClient(self, INDEPENDENT_CLIENT, port)

        def ok(step: str, requestId: int, body: Any) -> None:
            frame = steps[step]["frame"]
            self.assertEqual(
                (frame["type"], frame["id"], frame["serializer"], frame["compressor"], frame["head"], frame["body"]),
                (1, requestId, 1, 0, {}, body), step,
            )

        heartbeat = {"type": 4, "id": 7, "serializer": 1, "compressor": 0, "head": {}, "body": None, "bodyLength": 0,
                     "raw": ""}
        self.assertEqual(steps["heartbeat"]["frame"], heartbeat)
        ok("echo", 1, "hi")
        ok("kwargs", 2, {"nested": [1, 2]})
        ok("ping", 3, "pong")
        status = steps["status"]["frame"]["body"]
        self.assertEqual(status["services"]["Echo"], ["echo"])
        self.assertEqual(sorted(status["services"]), ["Echo", "Health", "Ping", "Recorder", "Sleeper", "Status"])
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


#: The second client: the rules of docs/rpc-protocol.md that leave nothing
#: to guess (strict JSON, the timeout-ms and accept-compressor grammars,
#: empty names, cut error texts, error-code, no late response, raw bodies
#: with a compressor, the response size limit, Status, the busy limit).
RULES_CLIENT = CLIENT_HELPERS + r'''
import zlib

port = int(input())
sock = socket.create_connection(("127.0.0.1", port), timeout=10)
ids = iter(range(1, 100000))


def call(service, method, args=None, body=None, ser=1, comp=0, **extra):
    head = {"service": service, "method": method}
    head.update(extra)
    if body is None:
        body = b"" if args is None else json.dumps(args).encode("utf-8")
    sock.sendall(frame(0, next(ids), head, body, ser=ser, comp=comp))
    got = receive(sock)
    got.pop("raw") if got["bodyLength"] > 10000 else None
    return got


for name, body in (("NaN", b"[NaN]"), ("-Infinity", b"[-Infinity]"), ("1e400", b"[1e400]")):
    report("strict request " + name, frame=call("Echo", "echo", body=body))
report("raw control characters", frame=call("Echo", "echo", body=b'["a\x01b\tc"]'))
report("strict request spaces", frame=call("Echo", "echo", body=b' [ {"a" :\r\n [ 1.5 ] } ]\t'))
report("strict response", frame=call("Rules", "nan", []))
report("after strict", frame=call("Ping", "ping", []))

for value in (" 300 ", "+300", "\uff13\uff10\uff10", "1e3", "-1", "", "soon", "12345678901", "1.2345", "1.", ".5"):
    report("timeout-ms " + repr(value), frame=call("Sleeper", "sleep", [0.01], **{"timeout-ms": value}))
for value in ("0", "300", "0.000", "1234567890", "300.5"):
    report("timeout-ms " + repr(value), frame=call("Sleeper", "sleep", [0.01], **{"timeout-ms": value}))
sock.sendall(request(0, next(ids), "Sleeper", "sleep", [0.3], **{"timeout-ms": "1.5"}))
report("timeout-ms '1.5'", silent=silence(sock, 0.8))

report("empty service", frame=call("", "echo", ["x"]))
report("empty method", frame=call("Echo", "", ["x"]))

for n in (4096, 4097, 100000):
    report("cut %d" % n, frame=call("Rules", "fail", ["x" * n]))
report("cut non-ASCII", frame=call("Rules", "fail", ["\u00e9" * 5000]))
for code in ("E1", 42, -3, True, "", 1.5, None):
    report("code " + json.dumps(code), frame=call("Rules", "coded", [code]))

sock.sendall(request(0, next(ids), "Rules", "stubborn", [0.3], **{"timeout-ms": "50"}))
report("late after deadline", silent=silence(sock, 0.8))
rid = next(ids)
sock.sendall(request(0, rid, "Rules", "stubborn", [0.3]) + frame(5, rid))
report("late after cancel", silent=silence(sock, 0.8))

report("raw zlib small", frame=call("Rules", "raw", body=zlib.compress(b"hello"), ser=0, comp=2))
data = bytes(range(256)) * 8
got = call("Rules", "raw", body=zlib.compress(data), ser=0, comp=2)
report("raw zlib large", frame=dict(got, raw=None),
       same=zlib.decompress(got["raw"].encode("latin-1")) == data if got["compressor"] == 2 else False)
report("raw plain", frame=call("Rules", "raw", body=b"abc", ser=0))

for value in ("2", "02", " 2", "0002", "9", "0", "two"):
    got = call("Rules", "big", [2000], **{"accept-compressor": value})
    report("accept-compressor " + repr(value), compressor=got["compressor"], bodyLength=got["bodyLength"])

limit = 1024 * 1024
got = call("Rules", "big", [limit - 16 - 2])
report("response at the limit", frame=dict(got, body=None), full=16 + got["bodyLength"])
report("response above the limit", frame=call("Rules", "big", [limit - 16 - 1]))
report("after too large", frame=call("Ping", "ping", []))

first = call("Status", "status", [])
sock.sendall(request(2, 0, "Nope", "x", []))
report("status", first=first["body"], second=call("Status", "status", [])["body"])

sock.sendall(b"".join(request(0, 5000 + i, "Sleeper", "sleep", [5], **{"timeout-ms": "500"}) for i in range(256)))
report("busy plain call", frame=call("Ping", "ping", []))
report("busy until the deadlines", silent=silence(sock, 1.0))
report("after busy", frame=call("Ping", "ping", []))
report("status after busy", status=call("Status", "status", [])["body"])
sock.close()
'''


class Rules:
    """
    Methods for the rules client: results JSON cannot carry, errors of any
    length and code, a method that swallows its cancellation, raw bytes,
    long results.
    """

    def nan(self) -> float:
        """
        @return: NaN, which JSON has no form for.
        """
        return float("nan")

    def big(self, n: int) -> str:
        """
        @return: a text of C{n} characters.
        """
        return "x" * n

    def fail(self, message: str) -> None:
        """
        @raise ServiceError: with that message.
        """
        raise ServiceError(message)

    def coded(self, code: Any) -> None:
        """
        @raise ServiceError: with that code.
        """
        raise ServiceError("coded", code)

    async def stubborn(self, seconds: float) -> str:
        """
        @return: C{"late"} when cancelled (the cancellation is swallowed),
            else C{"on time"} after C{seconds}.
        """
        try:
            await deferLater(reactor, seconds)
        except CancelledError:
            return "late"
        return "on time"

    def raw(self, data: bytes) -> bytes:
        """
        @return: the raw body as the method got it.
        """
        return data


class ProtocolRulesTests(TestCase):
    """
    Every rule of docs/rpc-protocol.md that an implementer in another
    language could otherwise only guess, checked by a client written from
    the page against a real RpcServer.
    """

    timeout = 90

    @inlineCallbacks
    def test_rules(self) -> Any:
        """
        What the page promises, step by step (each assertion quotes the
        page's rule).
        """
        outcomes = Outcomes()
        server, port = yield startRpcServer(self, Sleeper(), Rules(), hooks=[outcomes])
        steps = yield runIndependentClient(self, RULES_CLIENT, port)

        def error(step: str) -> tuple[str, str]:
            frame = steps[step]["frame"]
            self.assertEqual((frame["type"], frame["bodyLength"], frame["compressor"]), (1, 0, 0), step)
            return frame["head"]["error-type"], frame["head"]["error-message"]

        def result(step: str) -> Any:
            frame = steps[step]["frame"]
            self.assertEqual((frame["type"], frame["head"]), (1, {}), step)
            return frame["body"]

        # "JSON is read and written as RFC 8259 defines it": NaN, Infinity,
        # -Infinity and 1e400 are FrameError; white space between tokens is
        # allowed; "a raw control character ... inside a string ... is
        # accepted as that character", and written back escaped; a NaN
        # result is BadResponse.
        for name, needle in (("NaN", "NaN is not JSON"), ("-Infinity", "-Infinity is not JSON"),
                             ("1e400", "beyond the range of a 64-bit float")):
            kind, message = error("strict request " + name)
            self.assertEqual(kind, "FrameError", name)
            self.assertIn(needle, message, name)
        self.assertEqual(result("strict request spaces"), {"a": [1.5]})
        self.assertEqual(result("raw control characters"), "a\x01b\tc")
        self.assertEqual(steps["raw control characters"]["frame"]["raw"], '"a\\u0001b\\tc"')
        kind, message = error("strict response")
        self.assertEqual(kind, "BadResponse")
        self.assertIn("NaN, Infinity and -Infinity are not JSON (RFC 8259", message)
        self.assertNotIn("NaN", steps["strict response"]["frame"]["raw"])
        self.assertEqual(result("after strict"), "pong")

        # timeout-ms: "1 to 10 ASCII digits, optionally followed by . and 1
        # to 3 more ASCII digits ... Any other value ... is refused:
        # BadRequest"; "0" is no deadline.
        for value in (" 300 ", "+300", "\uff13\uff10\uff10", "1e3", "-1", "", "soon", "12345678901", "1.2345", "1.",
                      ".5"):
            kind, message = error(f"timeout-ms {value!r}")
            self.assertEqual(kind, "BadRequest", value)
            self.assertIn("timeout-ms", message, value)
        for value in ("0", "300", "0.000", "1234567890", "300.5"):
            self.assertEqual(result(f"timeout-ms {value!r}"), 0.01, value)
        self.assertEqual(steps["timeout-ms '1.5'"], {"silent": True})

        # "a request with no service or no method entry, or an empty one":
        # BadRequest.
        for step, key in (("empty service", "'service' is empty"), ("empty method", "'method' is empty")):
            kind, message = error(step)
            self.assertEqual(kind, "BadRequest", step)
            self.assertIn(key, message, step)

        # "a cut text is exactly 4096 characters long and ends with ... (N
        # characters, cut)".
        self.assertEqual(error("cut 4096")[1], "x" * 4096)
        for step, n in (("cut 4097", 4097), ("cut 100000", 100000), ("cut non-ASCII", 5000)):
            message = error(step)[1]
            self.assertEqual(len(message), 4096, step)
            self.assertTrue(message.endswith(f"... ({n} characters, cut)"), step)

        # error-code: "a non-empty string (as it is) or an integer that is
        # not a boolean (in decimal ...); otherwise ... absent".
        codes = {code: steps[f"code {code}"]["frame"]["head"].get("error-code")
                 for code in ('"E1"', "42", "-3", "true", '""', "1.5", "null")}
        self.assertEqual(codes, {'"E1"': "E1", "42": "42", "-3": "-3", "true": None, '""': None, "1.5": None,
                                 "null": None})

        # "No late response is ever sent": a method that catches the
        # cancellation (deadline or cancel frame) and returns anyway.
        self.assertEqual(steps["late after deadline"], {"silent": True})
        self.assertEqual(steps["late after cancel"], {"silent": True})
        self.assertEqual([s for s in outcomes.seen if s[0] == "stubborn"], [("stubborn", "ok"), ("stubborn", "ok")])
        self.assertEqual(server.status()["cancelled"], 3 + 256)

        # "a raw (code 0) request body is decompressed by its compressor
        # code like any other before the method gets it, and a raw response
        # is compressed by the rules above like any other".
        small = steps["raw zlib small"]["frame"]
        self.assertEqual((small["serializer"], small["compressor"], small["raw"]), (0, 0, "hello"))
        large = steps["raw zlib large"]
        self.assertEqual((large["frame"]["serializer"], large["frame"]["compressor"], large["same"]), (0, 2, True))
        self.assertEqual(steps["raw plain"]["frame"]["raw"], "abc")

        # accept-compressor: "1 to 3 ASCII digits, in decimal ("02" is 2
        # too) ... "0", a code the server does not have and any value not
        # of this form are ignored".
        compressors = {value: steps[f"accept-compressor {value!r}"]["compressor"]
                       for value in ("2", "02", " 2", "0002", "9", "0", "two")}
        self.assertEqual(compressors, {"2": 2, "02": 2, " 2": 0, "0002": 0, "9": 0, "0": 0, "two": 0})
        self.assertEqual(steps["accept-compressor ' 2'"]["bodyLength"], 2002)

        # "The server never sends a successful response longer than its
        # own maxMsgLen ... answered with a ResponseTooLarge error instead,
        # the connection stays open and the other calls go on".
        self.assertEqual(steps["response at the limit"]["full"], 1024 * 1024)
        self.assertEqual(steps["response at the limit"]["frame"]["head"], {})
        kind, message = error("response above the limit")
        self.assertEqual(kind, "ResponseTooLarge")
        self.assertIn("1048577 bytes, more than this connection's maxMsgLen of 1048576", message)
        self.assertEqual(result("after too large"), "pong")

        # Status.status: "an object with exactly these keys"; a refused
        # oneway counts in errors, not in calls.
        first, second = steps["status"]["first"], steps["status"]["second"]
        text = (DOCS / "rpc-protocol.md").read_text(encoding="utf-8")
        documented = json.loads(text.split("`Status.status` returns an object", 1)[1].split("```json\n", 1)[1]
                                .split("```", 1)[0])
        self.assertEqual(set(first), set(documented))
        self.assertEqual({k: type(v) for k, v in first.items() if k != "uptime"},
                         {k: type(v) for k, v in documented.items() if k != "uptime"})
        self.assertIsInstance(first["uptime"], (int, float))
        self.assertEqual(round(first["uptime"], 3), first["uptime"])
        self.assertEqual(first["services"], {"Echo": ["echo"], "Health": ["check"], "Ping": ["ping"], "Rules": sorted(
            ["big", "coded", "fail", "nan", "raw", "stubborn"]), "Sleeper": ["sleep"], "Status": ["status"]})
        self.assertEqual((second["calls"] - first["calls"], second["errors"] - first["errors"]), (1, 1))

        # Busy: "A request or oneway that arrives while the limit is
        # reached is refused with ServerBusy (error-code busy), whatever its
        # method ... plain calls are refused too".
        busy = steps["busy plain call"]["frame"]
        self.assertEqual((busy["head"]["error-type"], busy["head"]["error-code"]), ("ServerBusy", "busy"))
        self.assertEqual(steps["busy until the deadlines"], {"silent": True})
        self.assertEqual(result("after busy"), "pong")
        after = steps["status after busy"]["status"]
        self.assertEqual((after["inFlight"], after["busy"]), (0, 1))
