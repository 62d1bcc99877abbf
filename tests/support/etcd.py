"""
A real etcd for the discovery tests: L{EtcdServer} runs Debian's
C{etcd-server} (C{/usr/bin/etcd}, 3.4) on free loopback ports with a
temporary data dir, waits until it answers, and stops it (SIGTERM, then
SIGKILL); it can stop and start the same etcd again (same ports and data)
to test clients that live through an etcd restart.

etcd cannot listen on port 0, so free ports are found by binding port 0 and
releasing it; a clash with another process (etcd then exits with "address
already in use") is retried with new ports.

When no etcd is installed the tests skip with the reason, except in CI
(C{CI=true}) where they fail: C{.ci/run} installs C{etcd-server}.
C{ETCD_BIN} names another etcd binary.

For unit tests of the client without etcd, L{FakeAgent} is an HTTP agent
whose answers (whole or streamed bodies) the test gives.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable
import atexit
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.client import ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse, UNKNOWN_LENGTH
from zope.interface import implementer

from txgetty.discovery import EtcdClient, EtcdError

from .components import requireComponent


#: The longest etcd may take to answer after it is started, in seconds.
START_WAIT = 20.0
#: The longest etcd may take to exit after SIGTERM, in seconds.
STOP_WAIT = 10.0
#: How often waits poll, in seconds.
POLL = 0.05


def etcdBinary() -> str | None:
    """
    @return: the etcd binary to run (C{$ETCD_BIN}, or C{etcd} on the
        C{PATH}), or C{None} when there is none.
    """
    configured = os.environ.get("ETCD_BIN")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("etcd")


def requireEtcd() -> str:
    """
    @return: the etcd binary.
    @raise SkipTest: there is none, outside CI.
    @raise AssertionError: there is none and C{CI=true}.
    """
    return requireComponent(etcdBinary(), "the etcd tests",
                            "etcd is not installed (apt-get install etcd-server, or set ETCD_BIN)")


def _freePorts(count: int) -> list[int]:
    """
    @param count: how many.
    @return: loopback ports free a moment ago (all bound at once, so they
        differ).
    """
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _dieWithParent() -> None:
    """
    In the etcd child: be killed if the test process dies (Linux), so that
    a killed test run leaves no etcd behind.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


async def waitFor(condition: Callable[[], Awaitable[Any] | Any], what: str, seconds: float) -> float:
    """
    Poll a condition until it holds, at most C{seconds}.

    @param condition: returns (or resolves to) a value that is true when
        it holds.
    @param what: what is awaited, for the failure message.
    @param seconds: the deadline.
    @return: how long it took.
    @raise AssertionError: it did not hold in time.
    """
    start = time.monotonic()
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > seconds:
            raise AssertionError(f"waited {seconds:g} s for {what} in vain")
        await deferLater(reactor, POLL, lambda: None)


class EtcdServer:
    """
    One etcd process on loopback.

    @ivar clientPort: the port clients talk to.
    @ivar peerPort: the raft peer port.
    @ivar dataDir: its data directory.
    @ivar url: C{http://127.0.0.1:PORT}.
    @ivar registryURL: C{etcd://127.0.0.1:PORT}.
    """

    def __init__(self) -> None:
        """
        Choose a data dir; nothing runs yet.
        """
        self.binary = requireEtcd()
        self.dataDir = tempfile.mkdtemp(prefix="txgetty-etcd-")
        self.clientPort = 0
        self.peerPort = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log = os.path.join(self.dataDir, "etcd.log")

    @property
    def url(self) -> str:
        """
        @return: the client URL.
        """
        return f"http://127.0.0.1:{self.clientPort}"

    @property
    def registryURL(self) -> str:
        """
        @return: the registry URL for C{--registry}.
        """
        return f"etcd://127.0.0.1:{self.clientPort}"

    @property
    def running(self) -> bool:
        """
        @return: whether the process is alive.
        """
        return self._process is not None and self._process.poll() is None

    def _spawn(self) -> None:
        """
        Start the process on the chosen ports.
        """
        peer = f"http://127.0.0.1:{self.peerPort}"
        args = [
            self.binary, "--name", "txgetty-test", "--data-dir", os.path.join(self.dataDir, "data"),
            "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"txgetty-test={peer}", "--initial-cluster-state", "new",
            "--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
        ]
        with open(self._log, "ab") as log:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_dieWithParent
            )

    def logTail(self, size: int = 3000) -> str:
        """
        @param size: how many bytes.
        @return: the end of etcd's log, for failure messages.
        """
        try:
            with open(self._log, "rb") as f:
                f.seek(max(0, os.path.getsize(self._log) - size))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    async def _answers(self) -> bool:
        """
        @return: whether etcd serves requests (its version and a read).
        """
        client = EtcdClient(reactor, self.url, timeout=1.0)
        try:
            await client.get("/txgetty-test-probe")
            return True
        except EtcdError:
            return False
        finally:
            await client.close()

    async def _waitUp(self) -> bool:
        """
        @return: whether etcd answered before it exited or the deadline.
        @raise AssertionError: it neither answered nor exited in time.
        """
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if not self.running:
                return False
            if await self._answers():
                return True
            await deferLater(reactor, POLL, lambda: None)
        raise AssertionError(f"etcd did not answer at {self.url} within {START_WAIT:g} s:\n{self.logTail()}")

    async def start(self) -> None:
        """
        Start etcd on new free ports (retrying on a port clash) and wait
        until it answers.

        @raise AssertionError: it did not come up.
        """
        for _ in range(5):
            self.clientPort, self.peerPort = _freePorts(2)
            self._spawn()
            if await self._waitUp():
                _running.add(self)
                return
            self._reap()
        raise AssertionError(f"etcd would not start on free ports:\n{self.logTail()}")

    async def restart(self) -> None:
        """
        Start the same etcd again (same ports, same data) after L{stop} or
        L{kill}, and wait until it answers.

        @raise AssertionError: it did not come up.
        """
        for _ in range(20):  # the old sockets may linger a moment
            self._spawn()
            if await self._waitUp():
                _running.add(self)
                return
            self._reap()
            await deferLater(reactor, 0.25, lambda: None)
        raise AssertionError(f"etcd would not restart on {self.url}:\n{self.logTail()}")

    def _reap(self) -> None:
        """
        Wait for an exited process.
        """
        if self._process is not None:
            self._process.wait()
            self._process = None

    async def stop(self) -> None:
        """
        SIGTERM, then SIGKILL after L{STOP_WAIT}; wait until it exited.
        """
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await waitFor(lambda: process.poll() is not None, "etcd to exit", STOP_WAIT)
            except AssertionError:
                process.kill()
        self._reap()
        _running.discard(self)

    async def kill(self) -> None:
        """
        SIGKILL etcd, and wait until it exited.
        """
        if self._process is not None:
            self._process.kill()
        self._reap()
        _running.discard(self)

    def stopNow(self) -> None:
        """
        Stop it without the reactor (at exit): SIGTERM, a bounded wait,
        SIGKILL.
        """
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None
        _running.discard(self)

    def wipeData(self) -> None:
        """
        Delete etcd's data (it must be stopped): restarted, it is a new,
        empty etcd on the same ports.
        """
        shutil.rmtree(os.path.join(self.dataDir, "data"), ignore_errors=True)

    def removeData(self) -> None:
        """
        Delete the data dir (etcd must be stopped).
        """
        shutil.rmtree(self.dataDir, ignore_errors=True)


_running: set[EtcdServer] = set()
_shared: list[EtcdServer] = []


@atexit.register
def _stopAll() -> None:
    """
    Stop every etcd still running when the test process exits.
    """
    for server in list(_running):
        server.stopNow()
        server.removeData()


async def sharedEtcd() -> EtcdServer:
    """
    @return: the etcd this test process shares between tests (started on
        first use, stopped at exit); tests keep apart by key prefix.
    @raise SkipTest: no etcd, outside CI.
    """
    if _shared and _shared[0].running:
        return _shared[0]
    server = EtcdServer()
    await server.start()
    _shared[:] = [server]
    return server


async def ownEtcd(testCase: TestCase) -> EtcdServer:
    """
    @param testCase: the test, for clean-up.
    @return: an etcd for this test alone (to stop, kill or restart),
        stopped and deleted after it.
    """
    server = EtcdServer()

    async def cleanUp() -> None:
        await server.stop()
        server.removeData()

    testCase.addCleanup(lambda: Deferred.fromCoroutine(cleanUp()))
    await server.start()
    return server


def uniquePrefix(testCase: TestCase) -> str:
    """
    @param testCase: a test.
    @return: a key prefix no other test uses (C{/t-<test id>}).
    """
    return "/t-" + testCase.id().rsplit(".", 2)[-2] + "." + testCase.id().rsplit(".", 1)[-1] + f"-{os.getpid()}"


def clientFor(testCase: TestCase, server: EtcdServer, **kw: Any) -> EtcdClient:
    """
    @param testCase: the test, for clean-up.
    @param server: the etcd.
    @param kw: more L{EtcdClient} arguments.
    @return: a client of it, closed after the test.
    """
    client = EtcdClient(reactor, server.url, **kw)
    testCase.addCleanup(client.close)
    return client


class FakeBodyTransport:
    """
    The transport a fake response gives its body protocol.

    @ivar closed: whether the client closed or aborted it.
    """

    def __init__(self, response: FakeResponse) -> None:
        """
        @param response: the response it carries.
        """
        self._response = response
        self.closed = False

    def loseConnection(self) -> None:
        """
        The client closes the stream: the body ends at once.
        """
        self.closed = True
        self._response.finish(Failure(ConnectionDone("closed by the client")))

    abortConnection = loseConnection
    stopProducing = loseConnection

    def pauseProducing(self) -> None:
        """
        Not needed by these tests.
        """

    def resumeProducing(self) -> None:
        """
        Not needed by these tests.
        """


@implementer(IResponse)
class FakeResponse:
    """
    An HTTP response whose body the test delivers chunk by chunk.

    @ivar code: the HTTP status.
    @ivar transport: the body's transport, once the client asked for it.
    """

    version = (b"HTTP", 1, 1)
    length = UNKNOWN_LENGTH
    request = None
    previousResponse = None

    def __init__(self, code: int = 200, body: bytes | None = None) -> None:
        """
        @param code: the HTTP status.
        @param body: the whole body, delivered at once and ended; C{None}
            for a streamed body the test delivers with L{deliver}.
        """
        self.code = code
        self.phrase = b"OK" if code == 200 else b"Error"
        self.headers = Headers({b"content-type": [b"application/json"]})
        self.transport: FakeBodyTransport | None = None
        self._protocol: Any = None
        self._body = body
        self._ended = False

    def deliverBody(self, protocol: Any) -> None:
        """
        @param protocol: the body protocol.
        """
        self._protocol = protocol
        self.transport = FakeBodyTransport(self)
        protocol.makeConnection(self.transport)
        if self._body is not None:
            self.deliver(self._body)
            self.finish(Failure(ResponseDone()))

    def setPreviousResponse(self, response: Any) -> None:
        """
        Not used.
        """

    def deliver(self, data: bytes) -> None:
        """
        @param data: the next chunk of the body.
        """
        if not self._ended:
            self._protocol.dataReceived(data)

    def finish(self, reason: Failure) -> None:
        """
        @param reason: why the body ends.
        """
        if not self._ended:
            self._ended = True
            self._protocol.connectionLost(reason)


@implementer(IAgent)
class FakeAgent:
    """
    An HTTP agent that records requests and lets the test answer them.

    @ivar requests: C{(method, uri, headers, body bytes, Deferred)} per
        request, in order.
    """

    def __init__(self) -> None:
        """
        No request yet.
        """
        self.requests: list[tuple[bytes, bytes, Any, bytes | None, Deferred[Any]]] = []
        self.cancelled = 0

    def request(self, method: bytes, uri: bytes, headers: Any = None, bodyProducer: Any = None) -> Deferred[Any]:
        """
        @see: L{IAgent.request}
        """
        body = None
        if bodyProducer is not None:
            consumer = StringTransport()
            bodyProducer.startProducing(consumer)
            body = consumer.value()

        def cancel(d: Deferred[Any]) -> None:
            self.cancelled += 1

        d: Deferred[Any] = Deferred(cancel)
        self.requests.append((method, uri, headers, body, d))
        return d

    def lastJSON(self) -> Any:
        """
        @return: the JSON body of the last request.
        """
        return json.loads(self.requests[-1][3] or b"null")

    def answer(self, code: int = 200, body: Any = None, index: int = -1) -> None:
        """
        Answer a request with a whole body.

        @param code: the HTTP status.
        @param body: bytes, or an object sent as JSON.
        @param index: which request.
        """
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.requests[index][4].callback(FakeResponse(code, raw))

    def stream(self, index: int = -1) -> FakeResponse:
        """
        Answer a request with a streamed body.

        @param index: which request.
        @return: the response, to deliver chunks with.
        """
        response = FakeResponse(200)
        self.requests[index][4].callback(response)
        return response
