"""
txgetty checked by clients that share no code with it, as a reviewer checks
it by hand: C{socat} on UDP and TCP against C{twistd txgetty}, and a headless
Chromium on WebSocket against C{twistd txgetty} and against the page of
C{examples/multichat.py}.

Every server runs in a child process on free ports of 127.0.0.1.  Chromium
is driven through its DevTools protocol over a pipe
(C{--remote-debugging-pipe}: commands on its file descriptor 3, answers on
4), so these tests need neither a debugging port nor a browser-automation
library.  Each test is skipped, saying why, when its tool is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
import json
import os
import re
import shutil
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ProcessDone
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from ..support.net import helloFrame as hello
from ..support.examples import (
    EXAMPLES,
    LISTENING,
    LineClient,
    ProcessWatcher,
    ROOT,
    WAIT,
    bounded,
    connectClient,
    spawn,
    stopAndCheck,
    twistdPath,
)


WELCOME = "* welcome to multichat; you are "


def twistdTxgetty(testCase: TestCase, *options: str, cwd: str | None = None) -> ProcessWatcher:
    """
    Start C{twistd -n txgetty --no-rpc} with more options; the test's cleanup
    stops it.

    @param testCase: the test.
    @param options: the options after C{txgetty --no-rpc}.
    @param cwd: the working directory; the repository's root if C{None}.
    @return: the watcher of the process.
    """
    argv = [twistdPath(), "-n", "--pidfile=", "txgetty", "--no-rpc", *options]
    return spawn(testCase, argv, cwd=cwd or str(ROOT))


def socatPath() -> str:
    """
    @return: the C{socat} on C{PATH}.
    @raise SkipTest: there is none.
    """
    path = shutil.which("socat")
    if path is None:
        raise SkipTest("no socat on PATH (Debian: apt-get install socat)")
    return path


class SocatTests(TestCase):
    """
    C{twistd txgetty}'s echo service with C{socat} as the client: each
    datagram or stream chunk socat reads from its standard input is sent as
    is, and what comes back is written to its standard output.
    """

    timeout = 60

    def socat(self, address: str) -> ProcessWatcher:
        """
        Start C{socat - ADDRESS}; the test writes its input through
        C{watcher.transport.write} and the cleanup stops it.

        @param address: socat's second address, e.g. C{UDP:127.0.0.1:PORT}.
        @return: the watcher of the process.
        """
        return spawn(self, [socatPath(), "-", address], cwd=str(ROOT))

    @inlineCallbacks
    def test_udpRawEchoAndOversize(self) -> Any:
        """
        With C{--codec raw}, each datagram socat sends over UDP comes back
        unchanged; a datagram above C{--max-msg-len} gets no answer and one
        warning naming the limit in the server's log, and the server goes on
        echoing afterwards.
        """
        socatPath()
        server = twistdTxgetty(self, "--codec", "raw", "--max-msg-len", "100",
                               "--listen", "udp:0:interface=127.0.0.1")
        port = int((yield server.waitForOutput(rb"listening on udp:127\.0\.0\.1:(\d+)")).group(1))
        client = self.socat(f"UDP:127.0.0.1:{port}")
        client.transport.write(b"hello over udp")
        yield client.waitForOutput(re.escape(b"hello over udp"))
        client.transport.write(b"x" * 101)
        yield server.waitForOutput(
            rb"a datagram from udp:127\.0\.0\.1:\d+ is larger than 100 bytes \(maxMsgLen\): dropped"
        )
        client.transport.write(b"y" * 100)
        yield client.waitForOutput(re.escape(b"y" * 100))
        self.assertEqual(client.output, b"hello over udp" + b"y" * 100)
        client.transport.closeStdin()
        reason = yield bounded(client.whenEnded(), "socat to exit")
        self.assertIsInstance(reason, ProcessDone, client.output)
        yield stopAndCheck(self, server)

    @inlineCallbacks
    def test_udpHelloEcho(self) -> Any:
        """
        With the default hello framing, a datagram holding two hello frames
        (a 4-byte little-endian length, then the payload) gets both echoed.
        """
        socatPath()
        server = twistdTxgetty(self, "--listen", "udp:0:interface=127.0.0.1")
        port = int((yield server.waitForOutput(rb"listening on udp:127\.0\.0\.1:(\d+)")).group(1))
        client = self.socat(f"UDP:127.0.0.1:{port}")
        frames = hello(b"hello") + hello(b"getty")
        client.transport.write(frames)
        yield client.waitForOutput(re.escape(frames))
        self.assertEqual(client.output, frames)
        yield stopAndCheck(self, server)

    @inlineCallbacks
    def test_tcpHelloEcho(self) -> Any:
        """
        Over TCP, the bytes C{\\x05\\x00\\x00\\x00hello} (one hello frame)
        come back as they were sent; a second frame that reaches socat in
        two pieces, splitting its header, comes back whole; when socat's
        input ends it closes its side and exits.
        """
        socatPath()
        server = twistdTxgetty(self, "--listen", "tcp:0:interface=127.0.0.1")
        port = int((yield server.waitForOutput(LISTENING)).group(1))
        client = self.socat(f"TCP:127.0.0.1:{port}")
        client.transport.write(b"\x05\x00\x00\x00hello")
        yield client.waitForOutput(re.escape(b"\x05\x00\x00\x00hello"))
        client.transport.write(b"\x05\x00")
        yield deferLater(reactor, 0.2)
        client.transport.write(b"\x00\x00getty")
        yield client.waitForOutput(re.escape(b"\x05\x00\x00\x00getty"))
        self.assertEqual(client.output, b"\x05\x00\x00\x00hello\x05\x00\x00\x00getty")
        client.transport.closeStdin()
        reason = yield bounded(client.whenEnded(), "socat to exit")
        self.assertIsInstance(reason, ProcessDone, client.output)
        yield stopAndCheck(self, server)


def chromiumPath() -> str:
    """
    @return: Chromium's executable: C{/usr/bin/chromium}, or C{chromium} or
        C{chromium-browser} on C{PATH}.
    @raise SkipTest: there is none.
    """
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SkipTest("no Chromium (/usr/bin/chromium, or chromium on PATH; Debian: apt-get install chromium)")


class DevToolsError(Exception):
    """
    Chromium answered a DevTools command with an error.
    """


class Chromium(ProcessWatcher):
    """
    A headless Chromium driven over its DevTools pipe: commands written to
    its file descriptor 3 and answers read from 4, each a JSON object ended
    by a NUL byte.  Its standard output and error are kept as a
    L{ProcessWatcher}'s.
    """

    def __init__(self) -> None:
        """
        Start with no command sent.
        """
        super().__init__()
        self._pipe = b""
        self._lastId = 0
        self._answers: dict[int, Deferred] = {}

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        """
        @param childFD: the child's descriptor: 4 for DevTools messages,
            1 and 2 for its output.
        @param data: bytes from it.
        """
        if childFD != 4:
            super().childDataReceived(childFD, data)
            return
        self._pipe += data
        *messages, self._pipe = self._pipe.split(b"\0")
        for raw in messages:
            message = json.loads(raw)
            d = self._answers.pop(message.get("id"), None)  # events have no id
            if d is None:
                continue
            if "error" in message:
                d.errback(DevToolsError(message["error"]))
            else:
                d.callback(message.get("result", {}))

    def processEnded(self, reason: Failure) -> None:
        """
        @param reason: why Chromium ended; commands not answered fail.
        """
        answers, self._answers = self._answers, {}
        for d in answers.values():
            d.errback(DevToolsError(f"Chromium ended: {reason.value}\n{self.output.decode(errors='replace')}"))
        super().processEnded(reason)

    def command(self, method: str, sessionId: str | None = None, **params: Any) -> Deferred:
        """
        Send a DevTools command.

        @param method: e.g. C{Target.createTarget}.
        @param sessionId: the page session it is for; the browser's if
            C{None}.
        @param params: its parameters.
        @return: a L{Deferred} firing with the answer's C{result}; failing
            with L{DevToolsError} if Chromium refused the command or ended,
            or after L{WAIT} seconds.
        """
        self._lastId += 1
        message: dict[str, Any] = {"id": self._lastId, "method": method, "params": params}
        if sessionId is not None:
            message["sessionId"] = sessionId
        d: Deferred = Deferred()
        self._answers[self._lastId] = d
        self.transport.writeToChild(3, json.dumps(message).encode("utf-8") + b"\0")
        return bounded(d, f"Chromium's answer to {method}")

    @inlineCallbacks
    def evaluate(self, sessionId: str, expression: str) -> Any:
        """
        Run JavaScript in a page and wait for its value, awaiting it if it
        is a promise.

        @param sessionId: the page's session.
        @param expression: the JavaScript expression.
        @return: a L{Deferred} firing with the value (as JSON gives it);
            failing with L{DevToolsError} if the expression threw.
        """
        answer = yield self.command("Runtime.evaluate", sessionId, expression=expression,
                                    awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise DevToolsError(details.get("exception", {}).get("description") or details.get("text"))
        return answer["result"].get("value")

    @inlineCallbacks
    def openPage(self, url: str) -> Any:
        """
        Open a tab on a URL and wait until its page has loaded.

        @param url: the page's URL, as C{location.href} will read it.
        @return: a L{Deferred} firing with the tab's session id.
        """
        target = yield self.command("Target.createTarget", url=url)
        attached = yield self.command("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        sessionId = attached["sessionId"]
        state = None
        for _ in range(int(WAIT / 0.1)):
            try:
                state = yield self.evaluate(sessionId, "location.href + ' ' + document.readyState")
            except DevToolsError:
                state = None  # the context went away: the navigation replaced it
            if state == f"{url} complete":
                return sessionId
            yield deferLater(reactor, 0.1)
        raise AssertionError(f"the page {url} did not load: {state!r}")

    @inlineCallbacks
    def close(self) -> Any:
        """
        Close the browser and wait for it to exit.

        @return: a L{Deferred} firing with the exit's reason.
        """
        yield self.command("Browser.close")
        reason = yield bounded(self.whenEnded(), "Chromium to exit")
        return reason


def startChromium(testCase: TestCase) -> Chromium:
    """
    Start a headless Chromium with a fresh profile and its DevTools pipe;
    the test's cleanup stops it.

    @param testCase: the test.
    @return: the running browser.
    @raise SkipTest: Chromium is not installed.
    """
    executable = chromiumPath()
    profile = Path(testCase.mktemp()).resolve()
    profile.mkdir(parents=True)
    argv = [
        executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
        f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank",
    ]
    browser = Chromium()
    reactor.spawnProcess(browser, argv[0], argv, env=dict(os.environ), path=str(profile),
                         childFDs={0: "w", 1: "r", 2: "r", 3: "w", 4: "r"})
    testCase.addCleanup(browser.stop)
    return browser


#: Run in a page served by the echo server (an HTTP origin: a page from a
#: file has the origin C{null}, which the server refuses): a binary message
#: echoed, a text message refused with 1003, a message above the limit
#: refused with 1009.  The promise's value says what happened.
WEBSOCKET_CHECKS = """\
(async () => {
  const url = `ws://${location.host}/echo`;
  const open = () => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onclose = (e) => reject(new Error(`closed before it opened: ${e.code}`));
  });
  const closed = (ws) => new Promise((resolve) => {
    ws.onclose = (e) => resolve({code: e.code, reason: e.reason});
  });
  const out = {};
  let ws = await open();
  const frame = new Uint8Array(4 + 256);
  new DataView(frame.buffer).setUint32(0, 256, true);
  for (let i = 0; i < 256; i++) frame[4 + i] = i;
  const echo = await new Promise((resolve) => {
    ws.onmessage = (e) => resolve(e.data);
    ws.send(frame);
  });
  out.echoIsBinary = echo instanceof ArrayBuffer;
  out.echo = Array.from(new Uint8Array(echo));
  let done = closed(ws);
  ws.send("a text message");
  out.text = await done;
  ws = await open();
  done = closed(ws);
  const big = new Uint8Array(MAX + 1);
  new DataView(big.buffer).setUint32(0, MAX - 3, true);
  ws.send(big);
  out.tooBig = await done;
  return out;
})()
"""


class ChromiumWebSocketTests(TestCase):
    """
    A browser's own WebSocket client (headless Chromium's) against
    C{twistd txgetty} and against the multichat example's page.
    """

    timeout = 60

    @inlineCallbacks
    def test_echoTextAndOversize(self) -> Any:
        """
        From a page that C{twistd txgetty --listen
        ws://127.0.0.1:PORT/echo?static=DIR} serves, Chromium's WebSocket
        gets a binary hello frame holding every byte value echoed unchanged
        as a binary message; a text message closes the WebSocket with code
        1003 and txgetty's reason; a message one byte above
        C{--max-msg-len} closes it with 1009.
        """
        chromiumPath()
        static = Path(self.mktemp()).resolve()
        static.mkdir(parents=True)
        (static / "index.html").write_text(
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>echo</title>'
            '<link rel="icon" href="data:,"></head><body>echo</body></html>',
            encoding="utf-8",
        )
        server = twistdTxgetty(self, "--max-msg-len", "1000", "--listen", f"ws://127.0.0.1:0/echo?static={static}")
        port = int((yield server.waitForOutput(rb"listening on ws://127\.0\.0\.1:(\d+)/echo ")).group(1))
        browser = startChromium(self)
        page = yield browser.openPage(f"http://127.0.0.1:{port}/")
        out = yield browser.evaluate(page, WEBSOCKET_CHECKS.replace("MAX", "1000"))
        frame = hello(bytes(range(256)))
        self.assertTrue(out["echoIsBinary"], out)
        self.assertEqual(bytes(out["echo"]), frame)
        self.assertEqual(out["text"], {
            "code": 1003,
            "reason": "a text message arrived; txgetty sessions exchange binary messages (close code 1003)",
        })
        self.assertEqual(out["tooBig"]["code"], 1009, out)
        yield server.waitForOutput(rb"a text message arrived")
        yield server.waitForOutput(rb"a WebSocket message \(close code 1009\) exceeds the limit of 1000 bytes")
        reason = yield browser.close()
        self.assertIsInstance(reason, ProcessDone, browser.output.decode(errors="replace"))
        yield stopAndCheck(self, server)

    @inlineCallbacks
    def test_multichatPage(self) -> Any:
        """
        C{python examples/multichat.py}'s page, opened in Chromium over
        HTTP, connects and joins the room; a line typed into its form is
        heard by a TCP member; a line said over TCP shows in the page's log,
        non-ASCII text intact both ways.
        """
        chromiumPath()
        server = spawn(self, [sys.executable, str(EXAMPLES / "multichat.py"), "--tcp-port", "0", "--ws-port", "0",
                              "--udp-port", "0"], cwd=str(ROOT))
        tcpPort = int((yield server.waitForOutput(rb"multichat: tcp 127\.0\.0\.1:(\d+)")).group(1))
        wsPort = int((yield server.waitForOutput(rb"browser page: http://127\.0\.0\.1:(\d+)/")).group(1))
        tcp = yield connectClient(self, tcpPort, LineClient())
        yield tcp.waitUntil(lambda: any(line.startswith(WELCOME) for line in tcp.lines()), "the welcome")
        browser = startChromium(self)
        page = yield browser.openPage(f"http://127.0.0.1:{wsPort}/")
        status = yield browser.evaluate(page, PAGE_WAIT % "document.getElementById('status').textContent"
                                        ".startsWith('connected')")
        self.assertEqual(status, f"connected to ws://127.0.0.1:{wsPort}/chat")
        yield browser.evaluate(page, """(() => {
            document.getElementById("line").value = "h\u00e9llo from chromium \u2603";
            document.getElementById("say").requestSubmit();
        })()""")
        said = yield tcp.waitUntil(
            lambda: any(line.startswith("<ws") and line.endswith("> h\u00e9llo from chromium \u2603")
                        for line in tcp.lines()),
            "the browser's line over TCP",
        )
        self.assertTrue(said)
        tcp.send("hello from tcp \u00fcn\u00efcode")
        yield browser.evaluate(page, PAGE_WAIT % "document.getElementById('log').textContent"
                               ".includes('> hello from tcp \u00fcn\u00efcode')")
        shown = yield browser.evaluate(page, "Array.from(document.querySelectorAll('#log li'), li => li.textContent)")
        self.assertTrue(shown[0].startswith(f"{WELCOME}ws"), shown)
        nick = shown[0][len(WELCOME):].split(" ")[0]
        tcpNick = tcp.lines()[0][len(WELCOME):].split(" ")[0]
        self.assertEqual(shown[1:], [f"<{nick}> h\u00e9llo from chromium \u2603",
                                     f"<{tcpNick}> hello from tcp \u00fcn\u00efcode"])
        reason = yield browser.close()
        self.assertIsInstance(reason, ProcessDone, browser.output.decode(errors="replace"))
        yield tcp.waitForLine(f"* {nick} left")
        yield stopAndCheck(self, server)


#: A page expression that waits (polling, up to 10 s) until a condition holds,
#: then gives the status line; C{%s} is the condition.
PAGE_WAIT = """\
new Promise((resolve, reject) => {
  const until = Date.now() + 10000;
  const check = () => {
    if (%s) resolve(document.getElementById("status").textContent);
    else if (Date.now() > until) reject(new Error("timed out; status: " + document.getElementById("status").textContent
                                                   + "; log: " + document.getElementById("log").textContent));
    else setTimeout(check, 50);
  };
  check();
})
"""
