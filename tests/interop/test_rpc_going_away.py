"""
docs/rpc-protocol.md, I{Going away: a server that stops}, checked from its
words with a client that reads raw frames over a real socket.
"""

from __future__ import annotations

import json
import struct
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from txgetty.rpc import RpcServer
from txgetty.rpc.frame import Frame, REQUEST, decodeHead
from txgetty.rpc.serializers import JSON

from ..support.docs import DOCS

HEADER = struct.Struct(">HBIHBBBI")


class Slow:
    """
    A method that answers after a while.
    """

    def wait(self, seconds: float) -> Any:
        return deferLater(reactor, seconds, lambda: "done")


class RawClient(Protocol):
    """
    Collects every frame as (type, request id, head, body), and when the
    connection closed.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.frames: list[tuple[int, int, dict, bytes]] = []
        self.closedAt: float | None = None
        self.closed: Deferred = Deferred()
        self.waiting: list[tuple[Any, Deferred]] = []

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 16:
            _, _, full, headLength, kind, _, _, rid = HEADER.unpack_from(self.buffer)
            if len(self.buffer) < full:
                return
            frame, self.buffer = self.buffer[:full], self.buffer[full:]
            self.frames.append((kind, rid, dict(decodeHead(frame[16:headLength])), frame[headLength:]))
            for entry in list(self.waiting):
                if entry[0](self.frames[-1]):
                    self.waiting.remove(entry)
                    entry[1].callback(self.frames[-1])

    def waitFor(self, test: Any) -> Deferred:
        for frame in self.frames:
            if test(frame):
                return _fired(frame)
        d: Deferred = Deferred()
        self.waiting.append((test, d))
        return d.addTimeout(10, reactor)

    def request(self, rid: int, method: str, *args: Any) -> None:
        self.transport.write(Frame(REQUEST, rid, {"service": "Slow", "method": method},
                                   json.dumps(list(args)).encode(), JSON).encode())

    def connectionLost(self, reason: Any = None) -> None:
        self.closedAt = time.monotonic()
        self.closed.callback(None)


def _fired(value: Any) -> Deferred:
    d: Deferred = Deferred()
    d.callback(value)
    return d


class GoingAwayTests(TestCase):
    """
    What a stopping server sends and does, as the page says.
    """

    timeout = 30

    def test_pageSaysIt(self) -> None:
        """
        The page describes the notice as the tests below check it.
        """
        text = (DOCS / "rpc-protocol.md").read_text(encoding="utf-8")
        self.assertIn("a response frame (type 1) with **request id 0**, the\nhead map `status: going-away` and no body",
                      text)
        self.assertIn("answered `ShuttingDown`", text)
        self.assertIn("1 s has passed", text)

    async def test_notice(self) -> None:
        """
        "A server that stops tells each connection first, with a going-away
        notice: a response frame (type 1) with request id 0, the head map
        status: going-away and no body"; then "a request that arrives is
        answered ShuttingDown", the call in flight is answered "as usual",
        and the server "closes the connection once its calls are answered
        and either the client closed it or 1 s has passed".
        """
        server = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor, shutdownTimeout=10)
        server.register(Slow())
        server.startService()
        [address] = await server.whenListening()
        client = RawClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", address.port), client)
        self.addCleanup(lambda: client.transport.loseConnection())
        client.request(1, "wait", 0.5)
        await deferLater(reactor, 0.1, lambda: None)
        stopped = server.stopService()
        notice = await client.waitFor(lambda f: f[1] == 0)
        self.assertEqual(notice, (1, 0, {"status": "going-away"}, b""))
        client.request(2, "wait", 0)
        refused = await client.waitFor(lambda f: f[1] == 2)
        self.assertEqual((refused[0], refused[2]["status"], refused[2]["error-type"]), (1, "error", "ShuttingDown"))
        answered = await client.waitFor(lambda f: f[1] == 1)
        answeredAt = time.monotonic()
        self.assertEqual((answered[0], answered[2], json.loads(answered[3])), (1, {}, "done"))
        await client.closed
        self.assertGreater(client.closedAt - answeredAt, 0.8)
        self.assertLess(client.closedAt - answeredAt, 3.0)
        await stopped
