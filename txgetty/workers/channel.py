"""
The control channel between a supervisor and one worker: a UNIX
C{SOCK_SEQPACKET} socket pair, one JSON object per packet, each packet
perhaps carrying file descriptors (C{SCM_RIGHTS}).  Packet boundaries keep
every descriptor with its own message, so a connection handed over is
never matched to the wrong listener.

Messages (key C{"t"}), supervisor to worker:
  - C{{"t": "conn", "l": LISTENER}} + one descriptor: an accepted
    connection of stream listener C{LISTENER};
  - C{{"t": "bye"}}: the answer to C{draining}: no more connections follow.

Worker to supervisor:
  - C{{"t": "ready"}}: every socket is adopted and the services started;
  - C{{"t": "load", "live": N, "received": M}}: N connections open of the M
    received so far;
  - C{{"t": "draining"}}: the worker stops (SIGTERM, SIGINT, or its
    supervisor asked);
  - C{{"t": "log", "event": TEXT}}: a log event (L{eventAsJSON
    <twisted.logger.eventAsJSON>}), published by the supervisor.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, Iterable

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReadDescriptor, IWriteDescriptor
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

_log = Logger()

#: The largest message (bytes of JSON) sent or received.
MAX_MESSAGE = 60000
#: The most descriptors one message carries.
MAX_FDS = 8
#: Messages read per wake-up at most (others wait for the next turn).
READS_PER_TURN = 256


class IChannelReceiver(Interface):
    """
    What a L{ControlChannel} tells its owner.
    """

    def messageReceived(message: dict, fds: list[int]) -> None:
        """
        A message arrived.

        @param message: the decoded JSON object.
        @param fds: the descriptors it carried; the receiver owns (closes)
            them.
        """

    def channelLost(reason: Failure) -> None:
        """
        The other side closed the channel, or it failed; called once.

        @param reason: why.
        """


def channelPair() -> tuple[socket.socket, socket.socket]:
    """
    @return: a connected C{SOCK_SEQPACKET} pair: the supervisor's end (non
        blocking, close-on-exec) and the worker's end (inheritable, to be
        passed as a child descriptor).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    theirs.set_inheritable(True)
    return ours, theirs


def encode(message: dict) -> bytes:
    """
    @param message: a JSON-able object with a C{"t"} key.
    @return: its packet.
    @raise ValueError: it is larger than L{MAX_MESSAGE}.
    """
    data = json.dumps(message, separators=(",", ":"), default=repr).encode("utf-8")
    if len(data) > MAX_MESSAGE:
        raise ValueError(f"a control message of {len(data)} bytes is over {MAX_MESSAGE}")
    return data


@implementer(IReadDescriptor, IWriteDescriptor)
class ControlChannel:
    """
    One end of a control channel, read and written by the reactor.

    @ivar lost: the channel is closed.
    """

    def __init__(self, reactor: Any, sock: socket.socket, receiver: IChannelReceiver, label: str = "") -> None:
        """
        @param reactor: an L{IReactorFDSet <twisted.internet.interfaces.IReactorFDSet>}.
        @param sock: the C{SOCK_SEQPACKET} socket (made non blocking here).
        @param receiver: told about messages and the end.
        @param label: names the channel in logs.
        """
        sock.setblocking(False)
        self.reactor = reactor
        self.socket: socket.socket | None = sock
        self.receiver = receiver
        self.label = label
        self.lost = False
        self._broken = False
        # Packets not sent yet: (bytes, descriptors, close them once sent).
        self._queue: list[tuple[bytes, list[int], bool]] = []

    def start(self) -> None:
        """
        Start reading.
        """
        if self.socket is not None:
            self.reactor.addReader(self)

    def send(self, message: dict | bytes, fds: Iterable[int] = (), closeFds: bool = False) -> bool:
        """
        Send a message, now or once the socket is writable.

        @param message: the JSON-able message, or its packet (L{encode}d
            before, e.g. once for many sends).
        @param fds: descriptors to pass with it.
        @param closeFds: close them here once sent (or when a queued message
            is dropped because the channel was lost).
        @return: whether it was sent or queued; C{False} if the channel is
            lost or broke on this send: then the caller still owns the
            descriptors (and may send them elsewhere).
        """
        packet = (message if isinstance(message, bytes) else encode(message), list(fds), closeFds)
        if self.lost or self._broken:
            return False
        if self._queue:
            self._queue.append(packet)
            return True
        outcome = self._sendOne(packet)
        if outcome is None:
            self._queue.append(packet)
            self.reactor.addWriter(self)
        return outcome is not False

    def _sendOne(self, packet: tuple[bytes, list[int], bool]) -> bool | None:
        """
        @return: C{True} sent, C{None} the socket is full, C{False} the
            channel is broken (it closes on the next turn; the packet's
            descriptors are left alone).
        """
        data, fds, closeFds = packet
        assert self.socket is not None
        try:
            if fds:
                socket.send_fds(self.socket, [data], fds)
            else:
                self.socket.send(data)
        except BlockingIOError:
            return None
        except OSError as e:
            # The other side is gone (EPIPE, ECONNRESET): close on the next
            # turn, not inside the caller's send.
            self._broken = True
            self.reactor.callLater(0, self._close, Failure(e))
            return False
        if closeFds:
            for fd in fds:
                os.close(fd)
        return True

    def _discard(self, packets: list[tuple[bytes, list[int], bool]]) -> None:
        """
        Close the descriptors of packets that will never be sent.
        """
        for _, fds, closeFds in packets:
            if closeFds:
                for fd in fds:
                    os.close(fd)

    # -- IReadDescriptor / IWriteDescriptor ----------------------------------

    def fileno(self) -> int:
        """
        @return: the socket's descriptor (-1 once closed).
        """
        return -1 if self.socket is None else self.socket.fileno()

    def logPrefix(self) -> str:
        """
        @return: how the reactor names this in logs.
        """
        return f"txgetty control channel {self.label}".strip()

    def doRead(self) -> Any:
        """
        Read the messages waiting (at most L{READS_PER_TURN}).

        @return: L{CONNECTION_DONE <twisted.internet.main.CONNECTION_DONE>}
            at the end of the channel, L{CONNECTION_LOST
            <twisted.internet.main.CONNECTION_LOST>} if it failed.
        """
        for _ in range(READS_PER_TURN):
            if self.socket is None:
                return None
            try:
                data, fds, flags, _ = socket.recv_fds(self.socket, MAX_MESSAGE + 1, MAX_FDS)
            except BlockingIOError:
                return None
            except OSError:
                return CONNECTION_LOST
            if not data and not fds:
                return CONNECTION_DONE
            self._received(data, list(fds), flags)
        return None

    def _received(self, data: bytes, fds: list[int], flags: int) -> None:
        """
        Decode a packet and give it to the receiver.
        """
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise ValueError("the packet was cut (too large, or too many descriptors)")
            message = json.loads(data)
            if not isinstance(message, dict):
                raise ValueError("the packet is not a JSON object")
        except ValueError as e:
            for fd in fds:
                os.close(fd)
            _log.warn("txgetty workers: {channel}: a control message was dropped: {reason}",
                      channel=self.logPrefix(), reason=str(e), error=type(e).__name__)
            return
        self.receiver.messageReceived(message, fds)

    def doWrite(self) -> Any:
        """
        Send queued packets while the socket takes them.
        """
        while self._queue and self.socket is not None:
            outcome = self._sendOne(self._queue[0])
            if outcome is None:
                return None
            if outcome is False:
                return None  # _close discards what is queued, this packet too
            self._queue.pop(0)
        self.reactor.removeWriter(self)
        return None

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor stopped watching: close.

        @param reason: why.
        """
        self._close(reason)

    def close(self) -> None:
        """
        Close this end (the other side reads the end of the channel).
        """
        self._close(Failure(ConnectionDone("closed by this side")))

    def _close(self, reason: Failure) -> None:
        """
        Close once; tell the receiver.
        """
        if self.lost:
            return
        self.lost = True
        if self.socket is not None:
            self.reactor.removeReader(self)
            self.reactor.removeWriter(self)
            self.socket.close()
            self.socket = None
        queued, self._queue = self._queue, []
        self._discard(queued)
        self.receiver.channelLost(reason)

