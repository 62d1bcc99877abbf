"""
What holds the delivery of a session's packets to C{onMessage}: an awaited
handler (the L{Deferred <twisted.internet.defer.Deferred>} an C{onMessage}
returned unfinished) or a yielded turn (the delayed call of the next turn,
after C{maxPacketsPerTurn} packets of one read), and the packets parked
behind it, in wire order.

While delivery is held the session does not read (the C{"handler"} reason
of its L{ReadGate <txgetty.session.readgate.ReadGate>}), new bytes wait in
its buffer, new messages in its L{WaitingMessages
<txgetty.session.reading.WaitingMessages>}; when what it waits for is over,
the session takes the parked packets back (L{Delivery.resume}) and delivers
them first.

How packets reach C{onMessage} at all depends on the transport, and is
chosen once per connection: a L{DeliveryMode} (the session's
C{STREAM_DELIVERY} or C{MESSAGE_DELIVERY}).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from twisted.internet.defer import Deferred


class Delivery:
    """
    The hold on one session's delivery and the packets parked behind it.

    @ivar waiting: what delivery waits for: an awaited handler's
        L{Deferred <twisted.internet.defer.Deferred>}, or the delayed call
        of the next turn; C{None} while packets flow.
    @ivar parked: the packets still to deliver once it is over (an
        iterator, its rest in wire order), or C{None}.
    """

    __slots__ = ("waiting", "parked")

    def __init__(self) -> None:
        """
        Start with packets flowing.
        """
        self.waiting: Any = None
        self.parked: Iterator[Any] | None = None

    @property
    def isHeld(self) -> bool:
        """
        C{True} while delivery waits for a handler or for its next turn.
        """
        return self.waiting is not None

    def hold(self, waiting: Any, packets: Iterator[Any]) -> None:
        """
        Hold delivery until C{waiting} is over, with packets parked behind
        it.

        @param waiting: an awaited handler's Deferred, or the delayed call
            of the next turn.
        @param packets: the packets to deliver after it.
        """
        self.waiting = waiting
        self.parked = packets

    def park(self, packets: Iterator[Any]) -> None:
        """
        Park more packets behind what delivery already waits for (they
        replace the parked iterator: it is the rest of the same read).

        @param packets: the packets to deliver once the hold is over.
        """
        self.parked = packets

    def resume(self) -> Iterator[Any] | None:
        """
        What delivery waited for is over: packets flow again.

        @return: the packets that were parked, or C{None}.
        """
        packets = self.parked
        self.waiting = self.parked = None
        return packets

    def drop(self) -> None:
        """
        The session is gone: cancel a pending turn, forget the parked
        packets.  An awaited handler is left to finish (its result is then
        only logged, if it failed).
        """
        waiting = self.waiting
        self.waiting = self.parked = None
        if waiting is not None and not isinstance(waiting, Deferred) and waiting.active():
            waiting.cancel()


class DeliveryMode:
    """
    How a session delivers, chosen once when it is connected, from its
    transport: on a byte stream the writes of one read's handlers are
    batched and a long read is spread over turns; on a message transport
    (WebSocket, UDP) each write is a message of its own.  The session
    calls the mode's functions with itself first.

    @ivar name: C{"stream"} or C{"messages"}.
    @ivar messages: whether the transport hands over whole messages.
    @ivar dispatchRead: delivers the packets of one read or message,
        C{dispatchRead(session, packets)} (a list).
    @ivar dispatchParked: delivers the packets parked behind a hold,
        C{dispatchParked(session, packets)} (an iterator).
    @ivar queueChunks: in a task-pool thread, queues the packets a handler
        wrote with C{writePkgs}, C{queueChunks(session, outbox, chunks)}.
    """

    __slots__ = ("name", "messages", "dispatchRead", "dispatchParked", "queueChunks")

    def __init__(
        self,
        name: str,
        messages: bool,
        dispatchRead: Callable[..., None],
        dispatchParked: Callable[..., None],
        queueChunks: Callable[..., None],
    ) -> None:
        """
        @param name: the mode's name.
        @param messages: whether the transport hands over whole messages.
        @param dispatchRead: see the attribute.
        @param dispatchParked: see the attribute.
        @param queueChunks: see the attribute.
        """
        self.name = name
        self.messages = messages
        self.dispatchRead = dispatchRead
        self.dispatchParked = dispatchParked
        self.queueChunks = queueChunks

    def __repr__(self) -> str:
        return f"<DeliveryMode {self.name}>"
