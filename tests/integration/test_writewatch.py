"""
The write watch of a session on a real TCP connection (127.0.0.1:0): it is
registered on the transport only once a write leaves bytes in the
transport's buffer, and from then on it makes the session unwritable past
C{writeHighMark} and writable again once the peer read, as before; an
application that registered a producer of its own on the transport first
keeps it, and the session checks the buffer after each write instead
(docs/flow-control.md, "Outbound").
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig

from ..support.net import ServerHarness, connectClient, echoCheck
from ..support.transports import waitUntil

#: Enough to fill a loopback socket's kernel buffers and pass the marks.
_BIG = b"x" * (8 * 1024 * 1024)


@implementer(IPushProducer)
class _AppProducer:
    """
    A producer the application registers on the session's transport.
    """

    def __init__(self) -> None:
        self.paused = 0

    def pauseProducing(self) -> None:
        self.paused += 1

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class LazyWriteWatchTests(TestCase):
    """
    The write watch waits for the first buffered write.
    """

    async def _serve(self, **config: Any) -> Any:
        """
        @param config: L{SessionConfig} settings.
        @return: the harness and a connected hello-framing client.
        """
        harness = ServerHarness(self, ["tcp:0:interface=127.0.0.1"], codec=HelloCodec,
                                config=SessionConfig(**config))
        (address,) = await harness.start()
        client = await connectClient(self, address)
        return harness, client

    async def test_notRegisteredWhileRepliesGoThrough(self) -> None:
        """
        Echoes the kernel takes at once register nothing on the transport:
        after a few round trips its C{producer} is still C{None} and the
        session is writable.
        """
        harness, client = await self._serve()
        await echoCheck(self, client, [b"a", b"bb", b"ccc"])
        session = harness.sessions[0]
        self.assertIsNone(session.transport.producer)
        self.assertTrue(session.isWritable())

    async def test_registeredOnceBuffered(self) -> None:
        """
        A write larger than the socket takes registers the watch, sized to
        C{writeHighMark}; past that mark the session is unwritable (and
        reading paused), and once the client read it all, writable again.
        """
        harness, client = await self._serve(writeHighMark=64 * 1024, writeLowMark=16 * 1024)
        await echoCheck(self, client, [b"first"])
        session = harness.sessions[0]
        client.transport.pauseProducing()
        session.writeBytes(_BIG)
        self.assertIsNotNone(session.transport.producer)
        self.assertEqual(session.transport.bufferSize, 64 * 1024)
        self.assertFalse(session.isWritable())
        self.assertEqual(session.timesUnwritable, 1)
        client.transport.resumeProducing()
        await waitUntil(session.isWritable, "the session to be writable again")
        await waitUntil(lambda: len(client.rawReceived) >= len(_BIG), "the big write to arrive")

    async def test_applicationProducerKept(self) -> None:
        """
        A producer the application registered on the transport before any
        write was buffered stays registered (no C{RuntimeError}); the session
        still becomes unwritable past C{writeHighMark}, by checking the
        buffer after the write.
        """
        harness, client = await self._serve(writeHighMark=64 * 1024, writeLowMark=16 * 1024)
        await echoCheck(self, client, [b"first"])
        session = harness.sessions[0]
        producer = _AppProducer()
        session.transport.registerProducer(producer, True)
        client.transport.pauseProducing()
        session.writeBytes(_BIG)
        self.assertIs(session.transport.producer, producer)
        self.assertFalse(session.isWritable())
        client.transport.resumeProducing()
        await waitUntil(lambda: len(client.rawReceived) >= len(_BIG), "the big write to arrive")
        session.transport.unregisterProducer()


class NoWatchOnCloseTests(TestCase):
    """
    A session whose watch was never registered closes as before.
    """

    async def test_closeWithoutWatch(self) -> None:
        """
        Closing a session that never buffered a write unregisters nothing
        and ends the connection cleanly.
        """
        harness = ServerHarness(self, ["tcp:0:interface=127.0.0.1"], codec=HelloCodec)
        (address,) = await harness.start()
        client = await connectClient(self, address)
        await echoCheck(self, client, [b"x"])
        session = harness.sessions[0]
        await session.close()
        self.assertTrue(session.isClosed)
        await waitUntil(lambda: client.lostReason is not None, "the client to see the close")

