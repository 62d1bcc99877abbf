"""
What txgetty reads of autobahn beyond its public API (L{txgetty.transports.websocket}'s
direct frame writes), and the fallback to C{sendMessage} when an autobahn
release lacks it (docs/transports.md, "Messages and their size").

CI installs the newest autobahn the index offers (the requirement has no
upper bound), so these tests run against it.
"""

from __future__ import annotations

import autobahn

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase

from txgetty import SessionConfig
from txgetty.transports import websocket

from ..support.net import bounded, helloFrame
from ..support.transports import RawWebSocketClient, captureLogs, inThread, whenEvent
from ..support.ws import NO_WEBSOCKETS, Recorder, echoMessages, startServer


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


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
