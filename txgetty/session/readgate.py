"""
The read gate of a session: reading from the peer stops while any reason to
pause holds and starts again once none is left.

The reasons (L{PAUSE_REASONS <txgetty.interfaces.PAUSE_REASONS>}) are an
unfinished C{onOpen} (C{"opening"}), an awaited C{onMessage} or a yielded
turn (C{"handler"}), a task-pool backlog above C{backlogHighMark}
(C{"backlog"}), a full pool (C{"pool"}), an unwritable session
(C{"unwritable"}), the application (C{"user"}) and the peer's end of input
(C{"eof"}, never dropped).  The gate pauses the transport on its first
reason and resumes it when the last one goes, never once the connection is
gone.
"""

from __future__ import annotations

from typing import Any, Callable

from ..interfaces import PAUSE_REASONS

#: The reason that the peer finished sending (see L{ReadGate.peerDone}).
EOF = PAUSE_REASONS["eof"]


def _noTransport() -> None:
    """
    The producer of a released L{ReadGate}: no transport.
    """


class ReadGate:
    """
    The pause reasons of one session and the pausing of its transport.

    @ivar reasons: the bits of the reasons that hold now.
    """

    __slots__ = ("reasons", "_producer")

    def __init__(self, producer: Callable[[], Any]) -> None:
        """
        @param producer: gives the transport to pause and resume, or C{None}
            once the connection is gone (the session's state is final): the
            transport is then left alone.
        """
        self.reasons = 0
        self._producer = producer

    def release(self) -> None:
        """
        The connection is gone for good: leave the transport alone from now
        on, and drop the reference back to the session that the producer
        callable holds (so that the session is freed by its reference count,
        not by the garbage collector).
        """
        self._producer = _noTransport

    def pause(self, why: str, transport: bool = True) -> bool:
        """
        Stop reading for one more reason.

        @param why: a key of L{PAUSE_REASONS <txgetty.interfaces.PAUSE_REASONS>}.
        @param transport: C{False} to leave the transport alone (it is
            being closed at once, which stops its reading anyway).
        @return: whether this paused reading (the first reason, while
            connected).
        """
        bit = PAUSE_REASONS[why]
        paused = False
        if not self.reasons and (producer := self._producer()) is not None:
            if transport:
                producer.pauseProducing()
            paused = True
        self.reasons |= bit
        return paused

    def peerFinished(self) -> bool:
        """
        The peer finished sending and the transport is being closed at once
        (which stops its reading anyway): hold the C{"eof"} reason without
        pausing the transport.

        @return: whether this is the first reason (reading counts as paused).
        """
        reasons = self.reasons
        self.reasons = reasons | EOF
        return not reasons

    def resume(self, why: str) -> None:
        """
        Drop one reason to stop reading; read again when none is left.

        @param why: a key of L{PAUSE_REASONS <txgetty.interfaces.PAUSE_REASONS>}.
        """
        bit = PAUSE_REASONS[why]
        if self.reasons & bit:
            self.reasons &= ~bit
            if not self.reasons and (transport := self._producer()) is not None:
                transport.resumeProducing()

    def holds(self, mask: int) -> bool:
        """
        @param mask: bits of L{PAUSE_REASONS <txgetty.interfaces.PAUSE_REASONS>}.
        @return: whether any of these reasons holds now.
        """
        return self.reasons & mask != 0

    @property
    def peerDone(self) -> bool:
        """
        C{True} once the peer finished sending (a half-close): the C{"eof"}
        reason, which nothing drops.
        """
        return self.reasons & EOF != 0
