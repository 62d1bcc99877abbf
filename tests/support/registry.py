"""
Helpers of the C{--registry} tests: C{twistd -n txgetty} as a real process
(L{TapProcess}), an RPC server registered in etcd in this process
(L{registeredServer}), and a loop of calls that counts its outcomes
(L{CallLoop}).
"""

from __future__ import annotations

from typing import Any
import os
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from txgetty.discovery import EtcdClient, parseEtcdURL
from txgetty.discovery.announce import ServerAnnouncement
from txgetty.rpc import RpcServer, registerBuiltins

from .etcd import waitFor

#: The venv's twistd.
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


class TapProcess(ProcessProtocol):
    """
    C{twistd -n txgetty ARGS} as a child process, its output kept.

    @ivar output: stdout and stderr so far.
    @ivar ended: fires with the exit reason.
    """

    def __init__(self, testCase: TestCase, *args: str) -> None:
        """
        Start it; it is killed after the test if still running.

        @param testCase: the test, for clean-up.
        @param args: the arguments after C{txgetty}.
        """
        self.output = ""
        self.ended: Deferred[None] = Deferred()
        self.status: Failure | None = None
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        argv = [TWISTD, "-n", "--pidfile=", "txgetty", *args]
        self.transport = reactor.spawnProcess(self, TWISTD, argv, env=env, usePTY=False)
        testCase.addCleanup(self._cleanUp)

    def outReceived(self, data: bytes) -> None:
        self.output += data.decode(errors="replace")

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.status = reason
        self.ended.callback(None)

    @property
    def running(self) -> bool:
        """
        @return: whether it has not exited.
        """
        return self.status is None

    def signal(self, name: str) -> None:
        """
        @param name: C{"TERM"}, C{"KILL"}, ...
        """
        self.transport.signalProcess(name)

    async def waitForOutput(self, text: str, seconds: float = 20.0) -> None:
        """
        Wait until its output contains C{text}.

        @raise AssertionError: not within C{seconds}, with the output.
        """
        try:
            await waitFor(lambda: text in self.output or not self.running, repr(text), seconds)
        except AssertionError:
            raise AssertionError(f"no {text!r} in the output of twistd txgetty:\n{self.output}") from None
        if text not in self.output:
            raise AssertionError(f"twistd txgetty exited without {text!r}:\n{self.output}")

    async def _cleanUp(self) -> None:
        if self.running:
            self.signal("KILL")
            await self.ended


async def registeredServer(testCase: TestCase, url: str, ttl: int = 3) -> tuple[RpcServer, ServerAnnouncement]:
    """
    An RPC server with the demo services on 127.0.0.1:0, registered in
    etcd as C{--registry} does; both stopped after the test.

    @param testCase: the test, for clean-up.
    @param url: the registry URL.
    @param ttl: the lease TTL.
    @return: the server and its announcement, once registered.
    """
    server = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor, shutdownTimeout=5)
    registerBuiltins(server)
    announcement = ServerAnnouncement.fromURL(url, server.whenListening, lambda: list(server.registry.names()),
                                              reactor=reactor, ttl=ttl)
    server.startService()
    announcement.startService()
    testCase.addCleanup(lambda: server.stopService() if server.running else None)
    testCase.addCleanup(lambda: announcement.stopService() if announcement.running else None)
    await announcement.whenRegistered()
    return server, announcement


def address(server: RpcServer) -> str:
    """
    @return: the C{host:port} a started server listens on.
    """
    bound = server.server.addresses[0]
    return f"{bound.host}:{bound.port}"


def etcdClient(testCase: TestCase, url: str) -> EtcdClient:
    """
    @return: an etcd client of a registry URL, closed after the test.
    """
    client = EtcdClient(reactor, parseEtcdURL(url)[0])
    testCase.addCleanup(client.close)
    return client


class CallLoop:
    """
    C{Echo.echo} called in a loop, C{width} calls at a time, counting
    successes and failures, until stopped.

    @ivar ok: calls answered.
    @ivar failed: the failures.
    """

    def __init__(self, client: Any, width: int = 4, **options: Any) -> None:
        self.client = client
        self.ok = 0
        self.failed: list[Failure] = []
        self._stopping = False
        self._loops = [Deferred.fromCoroutine(self._loop(i, options)) for i in range(width)]

    async def _loop(self, index: int, options: Any) -> None:
        while not self._stopping:
            try:
                await self.client.call("Echo.echo", index, **options)
                self.ok += 1
            except Exception:
                self.failed.append(Failure())
                await deferLater(reactor, 0.05, lambda: None)

    async def stop(self) -> None:
        """
        Stop calling; wait for the calls in flight.
        """
        self._stopping = True
        for loop in self._loops:
            await loop

    async def moreCalls(self, count: int, seconds: float = 10.0) -> None:
        """
        Wait until C{count} more calls succeeded.
        """
        target = self.ok + count
        await waitFor(lambda: self.ok >= target, f"{count} more calls", seconds)
