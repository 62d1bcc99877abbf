"""
txgetty's WebSocket server against an independent client, the C{websockets}
library.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from txgetty.config import SessionConfig
from txgetty.errors import CodecError, PacketTooLargeError

from ..support.net import helloFrame
from ..support.transports import inThread, whenEvent
from ..support.ws import NO_WEBSOCKETS, echoMessages, oversizeAfterEcho, sendThenWaitClose, startServer


class IndependentClientTests(TestCase):
    """
    A txgetty WebSocket server with the C{websockets} library as client.
    """

    timeout = 60
    skip = NO_WEBSOCKETS

    async def test_echo(self) -> None:
        """
        50 binary messages of one hello frame each come back in order, one
        message per packet; a message holding three frames gives three
        onMessage calls and three reply messages; the session is a
        ws-session and knows its path.
        """
        harness, port = await startServer(self)
        messages = [helloFrame(b"m%d" % i) for i in range(50)]
        both = helloFrame(b"a") + helloFrame(b"") + helloFrame(b"ccc")
        result = await inThread(echoMessages, f"ws://127.0.0.1:{port}/", messages + [both], 53, what="echoes")
        self.assertEqual(result["replies"], messages + [helloFrame(b"a"), helloFrame(b""), helloFrame(b"ccc")])
        listener = await harness.whenSession(0)
        await whenEvent(listener, "close")
        self.assertEqual(listener.messages, [b"m%d" % i for i in range(50)] + [b"a", b"", b"ccc"])
        [session] = harness.sessions
        self.assertEqual((session.name, session.getAttribute("ws.path")), ("ws-session", "/"))
        self.assertIsNone(result["extensions"])

    async def test_frameLengths(self) -> None:
        """
        The frames the server writes itself carry every length encoding of
        RFC 6455 right: messages of 4, 125, 126, 127, 65535, 65536 and
        100000 bytes (7-bit, 16-bit and 64-bit lengths at their edges) come
        back whole and in order to an independent client.
        """
        harness, port = await startServer(self, config=SessionConfig(maxMsgLen=200_000))
        sizes = [4, 125, 126, 127, 65535, 65536, 100_000]
        messages = [helloFrame(bytes([i]) * (n - 4)) for i, n in enumerate(sizes)]
        result = await inThread(echoMessages, f"ws://127.0.0.1:{port}/", messages, what="echoes")
        self.assertEqual([len(m) for m in result["replies"]], sizes)
        self.assertEqual(result["replies"], messages)

    async def test_oversizeRefused(self) -> None:
        """
        With maxMsgLen 1000 a message of exactly 1000 bytes is echoed; a
        larger one is never delivered: the server's onError runs, then
        onClose, and the client's connection ends.
        """
        harness, port = await startServer(self, config=SessionConfig(maxMsgLen=1000))
        fits = helloFrame(b"x" * 996)
        echo, _ = await inThread(oversizeAfterEcho, f"ws://127.0.0.1:{port}/", fits, helloFrame(b"y" * 2000))
        self.assertEqual(echo, fits)
        listener = await harness.whenSession(0)
        await whenEvent(listener, "close")
        self.assertEqual(listener.names(), ["open", "message", "error", "close"])
        self.assertEqual(listener.messages, [b"x" * 996])

    async def test_oversizeCloseCode(self) -> None:
        """
        The oversize message closes the WebSocket with code 1009, and the
        server's onError gets a L{PacketTooLargeError} naming the limit.
        """
        harness, port = await startServer(self, config=SessionConfig(maxMsgLen=1000))
        fits = helloFrame(b"x" * 996)
        _, code = await inThread(oversizeAfterEcho, f"ws://127.0.0.1:{port}/", fits, helloFrame(b"y" * 2000))
        listener = await harness.whenSession(0)
        await whenEvent(listener, "close")
        [failure] = listener.errors
        self.assertTrue(failure.check(PacketTooLargeError), failure)
        self.assertEqual(failure.value.limit, 1000)
        self.assertIs(harness.sessions[0].closeReason, failure)
        self.assertEqual(code, 1009)


    async def test_textMessage(self) -> None:
        """
        A text message closes the WebSocket with code 1003 (unsupported
        data); the server's onError gets a L{CodecError} saying so.
        """
        harness, port = await startServer(self)
        replies, code, reason = await inThread(
            sendThenWaitClose, f"ws://127.0.0.1:{port}/", ["hello"], what="a 1003 close"
        )
        self.assertEqual((replies, code), ([], 1003))
        self.assertIn("text message", reason)
        listener = await harness.whenSession(0)
        await whenEvent(listener, "close")
        self.assertEqual(listener.names(), ["open", "error", "close"])
        [failure] = listener.errors
        self.assertTrue(failure.check(CodecError))
        self.assertIn("text message", failure.getErrorMessage())
