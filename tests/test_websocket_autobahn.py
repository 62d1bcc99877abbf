"""
What txgetty reads of autobahn beyond its public API (L{txgetty.transports.websocket}'s
direct frame writes), and the fallback to C{sendMessage} when an autobahn
release lacks it (docs/transports.md, "Messages and their size").

CI installs the newest autobahn the index offers (the requirement has no
upper bound), so these tests run against it.
"""

from __future__ import annotations

from typing import Any

import autobahn
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty import SessionConfig
from txgetty.transports import websocket
from txgetty.transports.websocket import WebSocketTransport, directFrames

from .test_websocket import NO_WEBSOCKETS, echoMessages, startServer
from .netsupport import bounded, helloFrame
from .transportsupport import RawWebSocketClient, captureLogs, inThread, whenEvent

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


class FakeProtocol:
    """
    An open server protocol of an autobahn that lacks some of what txgetty
    reads: only the attributes given exist.

    @ivar sent: the messages given to C{sendMessage}.
    """

    def __init__(self, **attributes: Any) -> None:
        """
        @param attributes: the protocol's attributes (the rest are missing).
        """
        self.__dict__.update(attributes)
        self.sent: list[tuple[bytes, bool]] = []
        self.factory = type("Factory", (), {"isServer": True, "isSecure": False})()
        self.transport = Recorder()

    def sendMessage(self, payload: bytes, isBinary: bool = False) -> None:
        """
        @param payload: a message.
        @param isBinary: its kind.
        """
        self.sent.append((payload, isBinary))


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


COMPLETE = dict(state=websocket._OPEN, send_state=websocket._GROUND, send_queue=[], maskServerFrames=False,
                _perMessageCompress=None, maxMessagePayloadSize=1 << 20)


class FallbackUnitTests(SynchronousTestCase):
    """
    L{directFrames} and L{WebSocketTransport.write} with protocols that have,
    or lack, the attributes.
    """

    def setUp(self) -> None:
        """
        Each test sees the first fallback (and its log line) afresh.
        """
        self.patch(websocket, "_fallbackLogged", False)

    def test_complete(self) -> None:
        """
        With every attribute, a server's writes are frames written to the
        TCP transport, not C{sendMessage} calls.
        """
        protocol = FakeProtocol(**COMPLETE)
        transport = WebSocketTransport(protocol)
        transport.write(b"abc")
        self.assertEqual((protocol.transport.written, protocol.sent), ([b"\x82\x03abc"], []))

    def test_eachMissingAttribute(self) -> None:
        """
        Without any one of the attributes, every write is a
        C{sendMessage(data, isBinary=True)}, nothing is written past
        autobahn, and one info line names what is missing.
        """
        for name in websocket._FRAME_ATTRIBUTES:
            logs = captureLogs(self)
            self.patch(websocket, "_fallbackLogged", False)
            attributes = dict(COMPLETE)
            del attributes[name]
            protocol = FakeProtocol(**attributes)
            self.assertFalse(directFrames(protocol), name)
            transport = WebSocketTransport(protocol)
            transport.write(b"abc")
            transport.writeSequence([b"d", b"ef"])
            self.assertEqual(protocol.sent, [(b"abc", True), (b"d", True), (b"ef", True)], name)
            self.assertEqual(protocol.transport.written, [], name)
            self.assertEqual(len([line for line in logs if f"this autobahn has no {name}" in line]), 1, logs)

    def test_missingConstant(self) -> None:
        """
        Without one of autobahn's state constants, writes go through
        C{sendMessage} too.
        """
        self.patch(websocket, "_FRAME_CONSTANTS", websocket._FRAME_CONSTANTS + ("STATE_GONE_IN_A_LATER_RELEASE",))
        protocol = FakeProtocol(**COMPLETE)
        WebSocketTransport(protocol).write(b"abc")
        self.assertEqual((protocol.sent, protocol.transport.written), ([(b"abc", True)], []))

    def test_loggedOnce(self) -> None:
        """
        The fallback is logged once per process, not once per session.
        """
        logs = captureLogs(self)
        attributes = dict(COMPLETE)
        del attributes["send_queue"]
        for _ in range(3):
            directFrames(FakeProtocol(**attributes))
        self.assertEqual(len([line for line in logs if "this autobahn has no" in line]), 1)


class InstalledAutobahnTests(TestCase):
    """
    The installed autobahn, on real sockets.
    """

    timeout = 60
    skip = NO_WEBSOCKETS

    async def test_directFramesAreAutobahnsFrames(self) -> None:
        """
        With the installed autobahn, a server session writes its frames
        itself (this autobahn has every attribute), and each frame is the
        bytes autobahn's C{sendMessage} writes for the same message.
        """
        harness, port = await startServer(self, config=SessionConfig(maxMsgLen=100_000))
        raw = RawWebSocketClient()
        await bounded(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), raw), "a TCP connection")
        self.addCleanup(lambda: raw.transport.abortConnection() if raw.lostReason is None else None)
        await raw.whenUpgraded()
        listener = await harness.whenSession(0)
        [session] = harness.sessions
        protocol = session.transport.protocol
        self.assertTrue(session.transport._plainFrames,
                        f"autobahn {autobahn.__version__} lacks what txgetty reads: see txgetty.transports.websocket._FRAME_ATTRIBUTES")
        recorder = Recorder()
        self.patch(protocol, "transport", recorder)
        self.patch(session.transport, "underlyingTransport", recorder)
        for size in SIZES:
            payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
            recorder.written.clear()
            session.transport.write(payload)
            ours = b"".join(recorder.written)
            recorder.written.clear()
            protocol.sendMessage(payload, isBinary=True)
            self.assertEqual(ours, b"".join(recorder.written), f"a message of {size} bytes")
        raw.transport.abortConnection()
        await raw.whenLost()
        await whenEvent(listener, "close")

    async def test_fallbackEchoes(self) -> None:
        """
        With the attributes missing (simulated: one more name to look for),
        a server echoes through C{sendMessage}, every length encoding right.
        """
        self.patch(websocket, "_FRAME_ATTRIBUTES", websocket._FRAME_ATTRIBUTES + ("_goneInALaterRelease",))
        self.patch(websocket, "_fallbackLogged", False)
        logs = captureLogs(self)
        harness, port = await startServer(self, config=SessionConfig(maxMsgLen=200_000))
        messages = [helloFrame(bytes([i]) * max(n - 4, 0)) for i, n in enumerate([4, 125, 126, 65536, 100_000])]
        result = await inThread(echoMessages, f"ws://127.0.0.1:{port}/", messages, what="echoes")
        self.assertEqual(result["replies"], messages)
        [session] = harness.sessions
        self.assertFalse(session.transport._plainFrames)
        self.assertTrue(any("this autobahn has no _goneInALaterRelease" in line for line in logs), logs)
