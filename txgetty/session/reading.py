"""
Reading helpers of a session: the loop that applies a reader having only
getty's one-packet C{read} to a buffer, and the messages of a message
transport that wait while the session cannot take them.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from ..errors import CodecError, PacketTooLargeError

_log = Logger(namespace="txgetty.session")


def readOneByOne(session: Any, reader: Any, limit: int, buf: bytearray, out: list) -> tuple[int, bytearray]:
    """
    Cut packets out of a buffer with a reader's one-packet C{read}.

    @param session: the session, passed to C{reader.read}.
    @param reader: the reader.
    @param limit: the largest packet allowed (C{maxMsgLen}).
    @param buf: the buffer; consumed bytes are removed.
    @param out: the list packets are appended to.
    @return: how many bytes the buffer must hold before the next call, and
        the buffer that holds the rest: C{buf}, or a copy of its rest if the
        reader kept a memoryview of it.
    @raise CodecError: the reader broke its contract.
    @raise PacketTooLargeError: a packet is above C{limit}.
    """
    read = reader.read
    while buf:
        pkg, n = read(session, buf)
        if pkg is None:
            if n > limit:
                raise PacketTooLargeError(n, limit)
            if n and n <= len(buf):
                raise CodecError(
                    f"reader {reader!r} returned (None, {n}) although {len(buf)} bytes "
                    f"are there: it must return the packet once it is complete"
                )
            return n, buf
        if not 0 < n <= len(buf):
            raise CodecError(
                f"reader {reader!r} returned a packet of length {n} with {len(buf)} "
                f"bytes available: the length must be between 1 and what is there"
            )
        if n > limit:
            raise PacketTooLargeError(n, limit)
        out.append(pkg)
        try:
            del buf[:n]
        except BufferError:
            # The reader kept a memoryview of the buffer: continue on a copy.
            buf = bytearray(buf[n:])
    return 0, buf


def readOneMessage(session: Any, readWhole: Any, readPackets: Any, data: bytes, out: list) -> Failure | None:
    """
    Read one message of a message transport: with the codec's
    C{readMessage} if it has one, else with its C{readPackets}, in which
    case the message must hold whole packets.

    @param session: the session, passed to the codec.
    @param readWhole: the codec's C{readMessage}, or C{None}.
    @param readPackets: the codec's C{readPackets} (or the one-by-one loop).
    @param data: the message.
    @param out: the list packets are appended to.
    @return: what the codec raised (a L{CodecError} for an incomplete
        packet), or C{None}.
    """
    try:
        if readWhole is not None:
            readWhole(session, data, out)
            return None
        buf = bytearray(data)
        readPackets(session, buf, out)
        if buf:
            raise CodecError(
                f"a message of {len(data)} bytes ends with {len(buf)} bytes of an incomplete "
                f"packet; over {type(session.transport).__name__} each message must hold whole packets"
            )
    except Exception:
        return Failure()
    return None


class WaitingMessages(deque):
    """
    The messages of a message transport (WebSocket, UDP) that arrived while
    an awaited handler ran or C{onOpen} was unfinished, in order.
    """

    __slots__ = ()

    def hold(self, data: bytes, limit: int, session: Any) -> None:
        """
        Keep a message for later, or drop it (logged at info) if C{limit}
        wait already.

        @param data: the message.
        @param limit: how many may wait (C{backlogHighMark}).
        @param session: the session, for the log.
        """
        if len(self) < limit:
            self.append(data)
        else:
            _log.info("txgetty: {session!r}: dropped a message, {count} wait already (backlogHighMark)",
                      session=session, count=len(self), limit=limit)
