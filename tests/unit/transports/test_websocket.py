"""
Unit tests of the WebSocket transport (L{txgetty.transports.websocket}):
the fallback when autobahn lacks what txgetty reads of it.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from txgetty.transports import websocket
from txgetty.transports.websocket import WebSocketTransport, directFrames

from ...support.transports import captureLogs
from ...support.ws import Recorder


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
