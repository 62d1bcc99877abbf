"""
Flow control of a session, in both directions, and its task-pool delivery.

Inbound: reading from the peer pauses for as long as any reason holds (an
unfinished C{onOpen} or awaited C{onMessage}, a task-pool backlog above
C{backlogHighMark}, a full pool, an unwritable session, the user); the
reasons and the pausing of the transport are the session's
L{ReadGate <txgetty.session.readgate.ReadGate>}.

Outbound: the session is the owner of a push producer registered on its
transport, so Twisted tells it when the transport's buffer passes
C{writeHighMark} and when it drained; C{isWritable()} and the listener's
optional C{onWritabilityChanged} follow it, with C{writeLowMark} as the
level to get back under.  Past C{maxPendingBytes} the session is closed,
and so it is when it stays unwritable for C{writeTimeout} seconds with the
peer taking none of the bytes waiting.  That state is the session's
L{WriteMarks <txgetty.session.watermarks.WriteMarks>} object.
Mixed into L{txgetty.Session}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from twisted.internet.interfaces import IPushProducer
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from zope.interface import implementer

from . import lifecycle as S
from ..transports.sockets import unsentBytes
from ..errors import OutboundOverflowError, TaskPoolError, WriteTimeoutError
from .errorlog import logSessionFailure
from .pooling import CRON, SessionTasks

from .watermarks import WriteMarks

if TYPE_CHECKING:
    from .readgate import ReadGate




@implementer(IPushProducer)
class _WriteWatch:
    """
    The push producer a session registers on its transport: Twisted pauses
    it when the write buffer passes its size and resumes it once drained.
    """

    __slots__ = ("_full", "_drained")

    def __init__(self, full: Callable[[], None], drained: Callable[[], None]) -> None:
        """
        @param full: called when the transport's buffer passes its size.
        @param drained: called when it drained.
        """
        self._full = full
        self._drained = drained

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full.
        """
        self._full()

    def resumeProducing(self) -> None:
        """
        The transport's buffer drained.
        """
        self._drained()

    def stopProducing(self) -> None:
        """
        The transport is gone; nothing to do.
        """


def _fileDescriptor(transport: Any) -> Any:
    """
    @param transport: a transport, perhaps TLS-wrapped.
    @return: the transport that owns the socket buffer.
    """
    while hasattr(transport, "underlyingTransport"):
        transport = transport.underlyingTransport
    while isinstance(transport, ProtocolWrapper):
        transport = transport.transport
    return transport


class FlowMixin:
    """
    Read pausing, writability and task-pool delivery of a session.  It works
    on the attributes that L{txgetty.Session} declares.
    """

    if TYPE_CHECKING:
        # For the type checker: what this mixin uses of the session it is
        # mixed into (see LifecycleMixin for why it is declared here).
        transport: Any
        _state: S.State
        _wheel: Any
        _listener: Any
        _tasks: SessionTasks | None
        _cfg: Any
        _gate: ReadGate
        _marks: WriteMarks
        _clock: Any
        bytesWritten: int
        timesPaused: int
        timesUnwritable: int
        overflows: int

        @property
        def pendingBytes(self) -> int: ...
        _fire: Callable[..., bool]
        def _handlerFailed(self, failure: Failure, callback: str) -> None: ...
        def _lateHandlerFailure(self, failure: Failure, callback: str = "onMessage") -> None: ...
        def _endIfPeerDone(self) -> None: ...
    else:
        __slots__ = ()

    # -- reading ---------------------------------------------------------------

    def pauseReading(self) -> None:
        """
        Stop reading from the peer until L{resumeReading} (other reasons to
        pause, such as a full task-pool backlog, add up with this one).
        """
        self._pauseReading("user")

    def resumeReading(self) -> None:
        """
        Undo L{pauseReading}.
        """
        self._resumeReading("user")

    def _pauseReading(self, why: str) -> None:
        """
        Stop reading from the transport for one more reason (see
        L{ReadGate <txgetty.session.readgate.ReadGate>}).

        @param why: a key of L{PAUSE_REASONS <txgetty.interfaces.PAUSE_REASONS>}.
        """
        if self._gate.pause(why):
            self.timesPaused += 1

    def _resumeReading(self, why: str) -> None:
        """
        Drop one reason to stop reading; read again when none is left.

        @param why: a key of L{PAUSE_REASONS <txgetty.interfaces.PAUSE_REASONS>}.
        """
        self._gate.resume(why)

    # -- writing ---------------------------------------------------------------

    def isWritable(self) -> bool:
        """
        @return: C{False} while more than C{writeHighMark} bytes wait to be
            written (until they are back under C{writeLowMark}).
        """
        return self._marks.writable

    def _watchWrites(self) -> None:
        """
        Register the write watch on the transport and size its buffer to
        C{writeHighMark}.  Where another producer holds the transport (a
        WebSocket upgraded from twisted.web), every write checks the size
        instead; transports without producers are not watched.
        """
        transport = self.transport
        if self._marks.through and transport.producer is None:
            # A TCP or UNIX socket (the usual case): the watch waits for the
            # first write that leaves bytes in the transport's buffer
            # (L{_watchBuffered}); a short connection's replies go straight
            # to the socket, and it never needs one.
            self._marks.later = True
            return
        register = getattr(transport, "registerProducer", None)
        if register is None:
            return
        fd = _fileDescriptor(transport)
        if hasattr(fd, "bufferSize"):
            fd.bufferSize = self._cfg.writeHighMark
        if getattr(fd, "producer", None) is not None:
            # Another producer holds the transport: watch its buffer on
            # every write (the buffer's owner is kept for a cheap check).
            self._marks.poll = fd if hasattr(fd, "_tempDataLen") else True
        elif getattr(transport, "producer", None) is None and getattr(transport, "_producer", None) is None:
            register(_WriteWatch(self._writeBufferFull, self._writeBufferDrained), True)

    def _watchBuffered(self) -> None:
        """
        A write left bytes in the buffer of a socket transport whose write
        watch waited (see L{_watchWrites}): register the watch now, sized to
        C{writeHighMark}, and if that write already passed it, pause it as
        the transport's own C{write} would have.  If the application
        registered a producer of its own meanwhile, every write checks the
        size instead.
        """
        marks = self._marks
        marks.later = False
        transport = self.transport
        if transport.producer is not None:
            marks.poll = transport
            self._checkWriteSize()
            return
        transport.bufferSize = self._cfg.writeHighMark
        watch = _WriteWatch(self._writeBufferFull, self._writeBufferDrained)
        transport.registerProducer(watch, True)
        if transport.producer is watch and unsentBytes(transport) > transport.bufferSize:
            # (FileDescriptor's public flag: its doWrite resumes the
            # producer once the buffer drained.)
            transport.producerPaused = True
            watch.pauseProducing()

    def _checkWriteSize(self) -> None:
        """
        After a write on a transport that cannot be watched: unwritable once
        more than C{writeHighMark} bytes wait.
        """
        fd = self._marks.poll
        pending = self.pendingBytes if fd is True else unsentBytes(fd)
        if self._marks.writable and pending > self._cfg.writeHighMark:
            self._writeBufferFull()

    def _unwatchWrites(self) -> None:
        """
        Unregister the write watch (before a close: a paused producer would
        keep Twisted from closing the connection once the buffer drained).
        """
        marks = self._marks
        if marks.through and not marks.poll:
            if not marks.later and self.transport.producer is not None:
                self.transport.unregisterProducer()
            return
        unregister = getattr(self.transport, "unregisterProducer", None)
        if unregister is not None and not marks.poll:
            try:
                unregister()
            except RuntimeError:
                pass

    def _writeBufferFull(self) -> None:
        """
        The transport passed C{writeHighMark}: unwritable until it drains.
        """
        self._setWritable(False)
        self._checkOverflow()

    def _writeBufferDrained(self) -> None:
        """
        The transport's buffer drained: writable again.
        """
        self._setWritable(True)

    def _setWritable(self, writable: bool) -> None:
        """
        Change writability, tell the listener, pause or resume reading.

        @param writable: the new writability.
        """
        marks = self._marks
        if writable == marks.writable or self._state.final:
            return
        marks.writable = writable
        if writable:
            marks.stopChecking()
            self._resumeReading("unwritable")
        else:
            self.timesUnwritable += 1
            if self._cfg.pauseReadingWhenUnwritable:
                self._pauseReading("unwritable")
            marks.stallSince = self._clock.seconds()
            marks.taken = self.bytesWritten - self.pendingBytes
            marks.check = self._wheel.callLater(self._wheel.tick, self._writeCheck)
        notify = getattr(self._listener, "onWritabilityChanged", None)
        if notify is not None:
            try:
                notify(self)
            except Exception:
                logSessionFailure(self, Failure(), "ignored", "onWritabilityChanged", routine=False)

    def _writeCheck(self) -> None:
        """
        While unwritable, look each wheel tick whether the bytes waiting went
        under C{writeLowMark}, and whether the peer took any of them in the
        last C{writeTimeout} seconds.
        """
        marks = self._marks
        marks.check = None
        if marks.writable or self._state.final:
            return
        pending = self.pendingBytes
        if pending <= self._cfg.writeLowMark:
            self._setWritable(True)
            return
        if self._cfg.writeTimeout and self._state is S.OPEN and self._writeStalled(pending):
            return
        marks.check = self._wheel.callLater(self._wheel.tick, self._writeCheck)

    def _writeStalled(self, pending: int) -> bool:
        """
        @param pending: the bytes waiting now.
        @return: whether the peer took nothing for C{writeTimeout} seconds,
            in which case the session was closed with L{WriteTimeoutError}.
        """
        # Bytes the kernel took so far (codec framing written below txgetty,
        # as a WebSocket frame's header, makes it a slight underestimate).
        taken = self.bytesWritten - pending
        now = self._clock.seconds()
        marks = self._marks
        if taken > marks.taken:
            marks.taken = taken
            marks.stallSince = now
            return False
        stalled = now - marks.stallSince
        if stalled < self._cfg.writeTimeout:
            return False
        self._fire("error", Failure(WriteTimeoutError(
            f"the peer took none of the {pending} bytes waiting to be written for {stalled:.1f} s "
            f"(it does not read); writeTimeout is {self._cfg.writeTimeout:g} s: raise it or set 0 to "
            f"disable it (--write-timeout for twistd)"
        )))
        return True

    def _checkOverflow(self) -> None:
        """
        Close the session if more than C{maxPendingBytes} wait to be written.
        """
        pending = self.pendingBytes
        if pending > self._cfg.maxPendingBytes and not self._state.closed:
            self.overflows += 1
            self._fire("error", Failure(OutboundOverflowError(
                f"the peer does not read: {pending} bytes wait to be written, more than "
                f"maxPendingBytes ({self._cfg.maxPendingBytes}); raise it, or stop writing while "
                f"session.isWritable() is False (onWritabilityChanged)"
            )))

    # -- the task pool -----------------------------------------------------------

    def _toPool(self, packets: list[Any]) -> None:
        """
        Hand packets (or the cron marker) to the session's task pool (see
        L{SessionTasks <txgetty.session.pooling.SessionTasks>}).

        @param packets: the packets, in wire order.
        """
        tasks = self._tasks
        assert tasks is not None  # (called only for a session with a pool)
        try:
            tasks.deliver(packets)
        except RuntimeError as e:
            self._handlerFailed(Failure(TaskPoolError(str(e))), "onCron" if packets == [CRON] else "onMessage")
