"""
Unit tests for L{txgetty.session.delivery}: the hold on a session's
delivery (an awaited handler or a yielded turn) and the packets parked
behind it; and, through a session, the delivery it chooses once, when it
is connected, for a byte stream or a message transport.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.handlers import EchoListener
from txgetty.session import Session
from txgetty.session.delivery import Delivery, DeliveryMode
from txgetty.session.session import MESSAGE_DELIVERY, STREAM_DELIVERY
from txgetty.wheel import TimerWheel


class DeliveryTests(SynchronousTestCase):
    """
    L{Delivery} holds delivery until what it waits for is over, and gives
    back the packets parked behind it.
    """

    def test_flowsAtFirst(self) -> None:
        """
        A new delivery is not held and has nothing parked.
        """
        delivery = Delivery()
        self.assertFalse(delivery.isHeld)
        self.assertEqual((delivery.waiting, delivery.parked), (None, None))

    def test_holdThenResume(self) -> None:
        """
        C{hold} keeps what it waits for and the packets behind it;
        C{resume} releases the hold and gives those packets back, once.
        """
        delivery = Delivery()
        d: Deferred[None] = Deferred()
        packets = iter([b"a", b"b"])
        delivery.hold(d, packets)
        self.assertTrue(delivery.isHeld)
        self.assertIs(delivery.waiting, d)
        self.assertIs(delivery.resume(), packets)
        self.assertFalse(delivery.isHeld)
        self.assertIsNone(delivery.resume())

    def test_parkReplacesTheRest(self) -> None:
        """
        C{park} while held puts the rest of a read behind the same hold
        (the iterator it gives replaces the parked one).
        """
        delivery = Delivery()
        d: Deferred[None] = Deferred()
        delivery.hold(d, iter([b"a"]))
        rest = iter([b"a", b"b", b"c"])
        delivery.park(rest)
        self.assertIs(delivery.waiting, d)
        self.assertIs(delivery.resume(), rest)

    def test_dropCancelsATurn(self) -> None:
        """
        C{drop} (the session is gone) cancels the delayed call of a pending
        turn and forgets the parked packets.
        """
        clock = Clock()
        delivery = Delivery()
        call = clock.callLater(0, lambda: None)
        delivery.hold(call, iter([b"a"]))
        delivery.drop()
        self.assertFalse(call.active())
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertFalse(delivery.isHeld)
        self.assertIsNone(delivery.resume())

    def test_dropLeavesAHandlerAlone(self) -> None:
        """
        C{drop} does not cancel an awaited handler's Deferred: the handler
        finishes on its own (its late result is only logged).
        """
        delivery = Delivery()
        d: Deferred[None] = Deferred()
        delivery.hold(d, iter([]))
        delivery.drop()
        self.assertFalse(delivery.isHeld)
        self.assertNoResult(d)
        d.callback(None)
        self.assertIsNone(self.successResultOf(d))

    def test_dropWhenFlowing(self) -> None:
        """
        C{drop} of a delivery that is not held does nothing, and neither
        does it on a turn whose call already ran.
        """
        delivery = Delivery()
        delivery.drop()
        clock = Clock()
        call = clock.callLater(0, lambda: None)
        clock.advance(0)
        delivery.hold(call, iter([]))
        delivery.drop()
        self.assertFalse(delivery.isHeld)


class DeliveryModeTests(SynchronousTestCase):
    """
    The two L{DeliveryMode}s a session chooses from name the functions of
    the session they run.
    """

    def test_modes(self) -> None:
        """
        L{STREAM_DELIVERY} batches and takes turns, L{MESSAGE_DELIVERY}
        delivers parked packets straight to the handler loop; each says
        whether its transport hands over whole messages.
        """
        self.assertEqual((STREAM_DELIVERY.name, STREAM_DELIVERY.messages), ("stream", False))
        self.assertEqual((MESSAGE_DELIVERY.name, MESSAGE_DELIVERY.messages), ("messages", True))
        self.assertEqual(STREAM_DELIVERY.dispatchRead.__name__, "_dispatchStream")
        self.assertEqual(STREAM_DELIVERY.dispatchParked.__name__, "_dispatchStreamParked")
        self.assertEqual(MESSAGE_DELIVERY.dispatchRead.__name__, "_dispatchMessages")
        self.assertEqual(MESSAGE_DELIVERY.dispatchParked.__name__, "_dispatchMessages")
        self.assertEqual(repr(STREAM_DELIVERY), "<DeliveryMode stream>")

    def test_attributes(self) -> None:
        """
        A mode keeps what it is given.
        """
        def f(*args: Any) -> None:
            pass

        mode = DeliveryMode("test", True, f, f, f)
        self.assertEqual((mode.name, mode.messages, mode.dispatchRead, mode.dispatchParked, mode.queueChunks),
                         ("test", True, f, f, f))


class _CountingStream(StringTransport):
    """
    A byte-stream transport that keeps each of its writes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)


class _MessageTransport(_CountingStream):
    """
    A transport that hands over whole messages (as the WebSocket and UDP
    ones do): each C{write} is one message.
    """

    messages = True


def _hello(payload: bytes) -> bytes:
    """
    @return: one HelloCodec frame.
    """
    return HelloCodec().write(None, payload)


class ChosenDeliveryTests(SynchronousTestCase):
    """
    A session chooses its delivery once, in C{makeConnection}, from its
    transport's C{messages} attribute.
    """

    def connect(self, transport: Any, **config: Any) -> Session:
        """
        @return: an open echo session on C{transport}.
        """
        clock = Clock()
        session = Session(clock=clock, wheel=TimerWheel(clock), config=SessionConfig(**config))
        session.listener = EchoListener()
        session.codec = HelloCodec()
        session.makeConnection(transport)
        return session

    def test_streamBatchesAndTurns(self) -> None:
        """
        On a byte stream, the replies to the packets of one read go out in
        one write, and a read of more than C{maxPacketsPerTurn} packets is
        spread over turns.
        """
        transport = _CountingStream()
        session = self.connect(transport, maxPacketsPerTurn=2)
        session.dataReceived(_hello(b"a") + _hello(b"b"))
        self.assertEqual(transport.writes, [_hello(b"a") + _hello(b"b")])
        session.dataReceived(_hello(b"c") + _hello(b"d") + _hello(b"e"))
        self.assertEqual(transport.writes[1:], [_hello(b"c") + _hello(b"d")])
        self.assertEqual(transport.producerState, "paused")

    def test_messagesNeitherBatchNorTurn(self) -> None:
        """
        On a message transport, each reply is a message of its own, and
        the packets of one message are delivered at once however many
        there are (no turns).
        """
        transport = _MessageTransport()
        session = self.connect(transport, maxPacketsPerTurn=2)
        session.messageReceived(_hello(b"a") + _hello(b"b") + _hello(b"c"))
        self.assertEqual(transport.writes, [_hello(b"a"), _hello(b"b"), _hello(b"c")])
        self.assertEqual(transport.producerState, "producing")

    def test_chosenOnce(self) -> None:
        """
        The choice is made when the session is connected: a transport that
        says otherwise later does not change how packets are delivered.
        """
        transport = _MessageTransport()
        session = self.connect(transport)
        transport.messages = False  # type: ignore[misc]
        session.messageReceived(_hello(b"a") + _hello(b"b"))
        self.assertEqual(transport.writes, [_hello(b"a"), _hello(b"b")])
