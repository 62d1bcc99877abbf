"""
WebSocket helpers: a txgetty WebSocket server on port 0, and clients of the
C{websockets} library driven from a thread.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from .net import ServerHarness, WAIT, helloFrame
from .transports import receiveUntilClosed, wsConnect


class Recorder:
    """
    A transport that keeps what is written.
    """

    def __init__(self) -> None:
        """
        Nothing written yet.
        """
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        """
        @param data: kept.
        """
        self.written.append(data)


WS = "ws://127.0.0.1:0/"

try:
    import websockets
except ImportError:  # pragma: no cover - depends on the environment
    websockets = None
#: Why the tests that use the independent client are skipped, if they are.
NO_WEBSOCKETS = None if websockets is not None else (
    "the websockets library (the independent WebSocket client of these tests) is not installed; "
    "it belongs in pyproject.toml's test extra"
)

async def startServer(testCase: TestCase, url: str = WS, **serverArgs: Any) -> tuple[ServerHarness, int]:
    """
    @param testCase: the test, for clean-up.
    @param url: the WebSocket listener.
    @param serverArgs: more L{Server} arguments.
    @return: a running echo server (L{ServerHarness}) and its port.
    """
    harness = ServerHarness(testCase, [url], **serverArgs)
    [address] = await harness.start()
    return harness, address.port


def rejectedStatus(url: str, **kw: Any) -> int | None:
    """
    Try to open a WebSocket that the server should refuse (in a thread).

    @param url: the URL.
    @param kw: more C{wsConnect} arguments.
    @return: the HTTP status of the refusal, or C{None} if it opened.
    """
    from websockets.exceptions import InvalidStatus

    try:
        with wsConnect(url, **kw):
            return None
    except InvalidStatus as e:
        return e.response.status_code


def echoMessages(url: str, messages: list[bytes], replies: int | None = None, **kw: Any) -> dict[str, Any]:
    """
    Send messages, read the replies, close with 1000 (in a thread).

    @param url: the URL.
    @param messages: binary messages to send.
    @param replies: how many messages to read (default: one per message).
    @param kw: more C{wsConnect} arguments.
    @return: C{replies} (the messages read) and C{extensions} (the
        C{Sec-WebSocket-Extensions} response header).
    """
    with wsConnect(url, **kw) as ws:
        for message in messages:
            ws.send(message)
        got = [ws.recv(timeout=WAIT) for _ in range(len(messages) if replies is None else replies)]
        return {"replies": got, "extensions": ws.response.headers.get("Sec-WebSocket-Extensions")}


def sendThenWaitClose(url: str, messages: list[Any], **kw: Any) -> tuple[list[Any], int | None, str | None]:
    """
    Send messages, then read until the server closes (in a thread).

    @param url: the URL.
    @param messages: messages to send (C{str} ones go as text messages).
    @param kw: more C{wsConnect} arguments.
    @return: as L{receiveUntilClosed}.
    """
    with wsConnect(url, **kw) as ws:
        for message in messages:
            ws.send(message)
        return receiveUntilClosed(ws)


def oversizeAfterEcho(url: str, fits: bytes, big: bytes) -> tuple[bytes, int | None]:
    """
    Echo a message, then send one the server must refuse (in a thread).

    @param url: the URL.
    @param fits: a message within the server's limit.
    @param big: a message above it.
    @return: the echo of C{fits} and the close code the server sent
        (C{None} if it sent no close frame).
    """
    with wsConnect(url) as ws:
        ws.send(fits)
        echo = ws.recv(timeout=WAIT)
        ws.send(big)
        return echo, receiveUntilClosed(ws)[1]


def closeWith(url: str, code: int, reason: str) -> bytes:
    """
    Echo one packet, then close with a given code (in a thread).

    @param url: the URL.
    @param code: the close code.
    @param reason: the close reason.
    @return: the echo.
    """
    with wsConnect(url) as ws:
        ws.send(helloFrame(b"hi"))
        echo = ws.recv(timeout=WAIT)
        ws.close(code, reason)
        return echo
