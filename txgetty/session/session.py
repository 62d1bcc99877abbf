"""
The session: one connection, its codec, its listener, its counters and its
life cycle (see L{txgetty.session.lifecycle} for the transition table).

A L{Session} is the Twisted protocol of a stream connection (TCP, TLS, UNIX):
bytes go into one buffer, the reader cuts packets out of it, and every packet
goes to C{listener.onMessage} in wire order.  Writes made while a batch of
packets is being delivered are sent together with one C{transport.write}
after the batch, so a pipelining peer costs one system call per read, not one
per packet; on a TCP or UNIX socket with nothing waiting to be sent, a write
goes to the socket at once rather than a reactor turn later
(L{writeThrough <txgetty.transports.sockets.writeThrough>}).
"""

from __future__ import annotations

import itertools
from itertools import islice
from operator import length_hint
from inspect import iscoroutine
from typing import Any, Callable, Iterable, Iterator

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IHalfCloseableProtocol, IHandshakeListener, IProtocol, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.internet.tcp import Connection
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from . import lifecycle as S
from .flow import FlowMixin
from .readgate import ReadGate
from .delivery import Delivery, DeliveryMode
from .watermarks import WriteMarks
from .errorlog import ALREADY_LOGGED, logSessionFailure
from .lifecycle import NOTHING_PENDING, LifecycleMixin
from .owner import SessionOwner, asFailure
from .reading import WaitingMessages, readOneByOne, readOneMessage
from .pooling import SessionTasks
from .timers import SessionTimers
from .settings import SessionOptionsMixin, sharedSettings
from ..transports.addresses import formatAddress
from ..transports.sockets import transportBacklog, writeThrough
from ..config import SessionConfig
from ..errors import (
    CodecError,
    ConfigError,
    SessionClosedError,
)
from ..interfaces import PAUSE_REASONS, IEventListener, IReader, ISession, ITaskPool, ITimerWheel, IWriter
from ..taskpool import RUNNING, Outbox, currentOutbox

_ids = itertools.count(1)
_LISTENER_METHODS = ("onOpen", "onClose", "onError", "onCron", "onMessage")
#: The last listener, reader (with its C{readPackets} and C{readMessage})
#: and writer checked by the setters: a server's new-session callback sets
#: the same ones on every session, which then need no check again.  (Each
#: is kept alive until another replaces it.)
_lastChecked: dict[str, Any] = {"listener": None, "reader": (None, None, None), "writer": None}
#: The pause reasons of a full task-pool intake (see L{Session.backlogFull}).
_BACKLOG_FULL = PAUSE_REASONS["backlog"] | PAUSE_REASONS["pool"]


@implementer(ISession, IProtocol, IHandshakeListener, IHalfCloseableProtocol)
class Session(LifecycleMixin, FlowMixin, SessionOptionsMixin):
    """
    One connection with its codec, listener, counters and life cycle.

    @ivar transport: the Twisted transport, once connected.
    @ivar readerState: free for the reader's per-session state.
    @ivar timesPaused: times reading stopped (for any reason, from reading).
    @ivar timesUnwritable: times more than C{writeHighMark} bytes waited.
    @ivar overflows: times more than C{maxPendingBytes} waited (the
        session closed with L{OutboundOverflowError <txgetty.errors.OutboundOverflowError>}).
    @ivar handlerErrors: exceptions raised by C{onMessage} or C{onCron}.
    """

    __slots__ = (
        "__weakref__", "transport", "name", "id", "localAddress", "remoteAddress",
        "readerState", "bytesRead", "bytesWritten", "packetsRead", "packetsWritten",
        "startTime", "lastActive", "closeReason", "_state", "_clock", "_wheel", "_owner",
        "_listener", "_reader", "_writer", "_readPackets", "_buf", "_need", "_batch",
        "_attrs", "_waiters", "_opening", "_delivery", "_gate",
        "_timers", "_abortCall", "_tasks", "_marks",
        "_mode", "_messages", "_readMessage", "_readComplete", "_accepted",
        "timesPaused", "timesUnwritable", "overflows", "handlerErrors",
    )

    def __init__(
        self,
        clock: IReactorTime,
        wheel: ITimerWheel,
        config: SessionConfig | None = None,
        owner: SessionOwner | None = None,
        name: str | None = None,
        accepted: Any = None,
    ) -> None:
        """
        @param clock: the reactor or a test clock.
        @param wheel: the timer wheel that drives cron and timeouts.
        @param config: the initial settings (defaults if C{None}).
        @param owner: the server or client that made the session.
        @param name: a name for logs; derived from the transport if C{None}.
        @param accepted: what its connection takes from the listening socket
            that accepted it (L{AcceptedSockets
            <txgetty.transports.sockets.AcceptedSockets>}), if known.
        """
        self._owner = owner or SessionOwner()
        # (_applyConfig, inlined.)
        self._cfg = sharedSettings(config or SessionConfig(), self._owner.sessionRole)
        self._accepted = accepted
        self._socketHas = None
        self.transport: Any = None
        self.name = name
        self.id = next(_ids)
        self.localAddress = self.remoteAddress = None
        self.readerState = None
        self.bytesRead = self.bytesWritten = self.packetsRead = self.packetsWritten = 0
        # Read by txgetty.metrics at scrape time (plain ints, no lock).
        self.timesPaused = self.timesUnwritable = self.overflows = self.handlerErrors = 0
        self.startTime = self.lastActive = clock.seconds()
        self.closeReason: Failure | None = None
        self._state = S.NEW
        self._clock = clock
        self._wheel = wheel
        self._listener: Any = None
        self._reader: Any = None
        self._writer: Any = None
        self._readPackets: Callable[..., int] = _READ_ONE_BY_ONE
        self._buf = bytearray()
        self._need = 0
        self._batch: list[bytes] | None = None
        self._attrs: dict | None = None
        self._waiters: list[Deferred] = []
        self._opening = NOTHING_PENDING
        self._delivery = Delivery()
        self._gate = ReadGate(lambda: None if self._state.final else self.transport)
        self._timers = SessionTimers(self, wheel, clock, self._fire, self._cronTurn, self._describePartial)
        self._abortCall = None
        self._tasks: SessionTasks | None = None
        self._marks = WriteMarks()
        self._messages: WaitingMessages | None = None
        self._readMessage: Callable[..., None] | None = None
        self._readComplete: Callable[[Any], None] | None = None

    # -- identity -----------------------------------------------------------

    def __repr__(self) -> str:
        return f"<{self.name or 'session'}#{self.id} {self._state.name} {formatAddress(self.remoteAddress)}>"

    @property
    def isClosed(self) -> bool:
        """
        C{True} once the session no longer accepts writes (closing or closed).
        """
        return self._state.closed

    @property
    def pendingBytes(self) -> int:
        """
        Bytes written to the session and not yet handed to the kernel.
        """
        return transportBacklog(self.transport) + sum(map(len, self._batch or ()))

    @property
    def acceptsWrites(self) -> bool:
        """
        C{True} while C{writePkg} and its siblings accept writes (from the
        TLS handshake until the session closes, and while C{onError} of an
        erroring session runs).
        """
        return self._state.writable

    @property
    def backlogFull(self) -> bool:
        """
        C{True} while reading is paused because too many packets wait for
        the task pool (C{backlogHighMark}) or the pool itself is full: a
        datagram transport drops what arrives meanwhile.
        """
        return self._gate.holds(_BACKLOG_FULL)

    def fail(self, failure: Failure | BaseException) -> None:
        """
        Close the session as failed: an open session reports C{failure} to
        C{onError} (logged once) and closes; one that is not open yet is
        dropped.  What a transport calls when it detects a fault the session
        cannot see (a text WebSocket message, a dead peer, an ICMP refusal).

        @param failure: what went wrong.
        """
        self._fire("error", failure if isinstance(failure, Failure) else Failure(failure))

    @property
    def state(self) -> str:
        """
        The name of the life-cycle state (C{"OPEN"}, C{"CLOSING"}, ...).
        """
        return self._state.name

    # -- plug-ins -----------------------------------------------------------

    @property
    def listener(self) -> IEventListener:
        """
        The L{IEventListener}; setting it checks that it has the five methods.
        """
        return self._listener

    @listener.setter
    def listener(self, listener: IEventListener) -> None:
        if listener is not _lastChecked["listener"]:
            missing = [m for m in _LISTENER_METHODS if not callable(getattr(listener, m, None))]
            if missing:
                raise ConfigError(
                    f"session.listener must provide {', '.join(_LISTENER_METHODS)} "
                    f"(subclass txgetty.EventListener); {listener!r} lacks {', '.join(missing)}"
                )
            _lastChecked["listener"] = listener
        self._listener = listener
        #: Its optional onReadComplete (IReadCompleteListener), or None.
        self._readComplete = getattr(listener, "onReadComplete", None)

    @property
    def reader(self) -> IReader:
        """
        The L{IReader}; it must have C{read(session, data)}.
        """
        return self._reader

    @reader.setter
    def reader(self, reader: IReader) -> None:
        last = _lastChecked["reader"]
        if last[0] is not reader:
            if not callable(getattr(reader, "read", None)):
                raise ConfigError(f"session.reader must have a read(session, data) method, got {reader!r}")
            last = _lastChecked["reader"] = (
                reader, getattr(reader, "readPackets", None) or _READ_ONE_BY_ONE, getattr(reader, "readMessage", None)
            )
        self._reader, self._readPackets, self._readMessage = last
        self.readerState = None

    @property
    def writer(self) -> IWriter:
        """
        The L{IWriter}; it must have C{write(session, pkg)}.
        """
        return self._writer

    @writer.setter
    def writer(self, writer: IWriter) -> None:
        if writer is not _lastChecked["writer"]:
            if not callable(getattr(writer, "write", None)):
                raise ConfigError(f"session.writer must have a write(session, pkg) method, got {writer!r}")
            _lastChecked["writer"] = writer
        self._writer = writer

    @property
    def taskPool(self) -> Any:
        """
        The L{TaskPool <txgetty.taskpool.TaskPool>} that runs C{onMessage}
        and C{onCron}, or C{None} to run them in the reactor thread.
        """
        return None if self._tasks is None else self._tasks.pool

    @taskPool.setter
    def taskPool(self, pool: Any) -> None:
        if pool is not None and not ITaskPool.providedBy(pool):
            raise ConfigError(f"session.taskPool must be a txgetty TaskPool or None, got {pool!r}")
        if self._tasks is not None and self._tasks.pending:
            raise ConfigError(f"cannot change the task pool of {self!r}: {self._tasks.pending} packets are in it")
        self._tasks = None if pool is None else SessionTasks(
            pool, self, self._pauseReading, self._resumeReading, self._lateHandlerFailure, self._endIfPeerDone
        )

    @property
    def taskBacklog(self) -> int:
        """
        Packets handed to the task pool and not finished yet (what
        C{backlogHighMark} bounds).
        """
        return 0 if self._tasks is None else self._tasks.pending

    @property
    def codec(self) -> Any:
        """
        Set reader and writer at once (getty's C{SetPkgHandler}); reading it
        gives the reader.
        """
        return self._reader

    @codec.setter
    def codec(self, codec: Any) -> None:
        last = _lastChecked["reader"]
        if last[0] is codec and _lastChecked["writer"] is codec:
            # The codec checked last (every session of a listener has the
            # same): the two setters' work without their checks.
            self._reader, self._readPackets, self._readMessage = last
            self._writer = codec
            self.readerState = None
            return
        self.reader = codec
        self.writer = codec

    # -- attributes -----------------------------------------------------------

    def getAttribute(self, key: Any, default: Any = None) -> Any:
        """
        @param key: the attribute's key.
        @param default: returned when it is not set.
        @return: the stored value.
        """
        return default if self._attrs is None else self._attrs.get(key, default)

    def setAttribute(self, key: Any, value: Any) -> None:
        """
        @param key: the attribute's key.
        @param value: the value.
        """
        if self._attrs is None:
            self._attrs = {}
        self._attrs[key] = value

    def removeAttribute(self, key: Any) -> None:
        """
        @param key: the attribute's key; no error if it is not set.
        """
        if self._attrs is not None:
            self._attrs.pop(key, None)

    # -- IProtocol ------------------------------------------------------------

    def makeConnection(self, transport: Any) -> None:
        """
        @param transport: the connected transport.
        """
        self.transport = transport
        self._marks.through = isinstance(transport, Connection)
        # How packets reach onMessage, chosen once: a byte stream or whole
        # messages (see DeliveryMode).
        mode = self._mode = MESSAGE_DELIVERY if getattr(transport, "messages", False) else STREAM_DELIVERY
        self._timers.messageMode = mode.messages
        self.connectionMade()

    def connectionMade(self) -> None:
        """
        Record the addresses and start the life cycle (TLS sessions wait for
        the handshake before they open).
        """
        t = self.transport
        accepted = self._accepted
        if accepted is not None and self._marks.through:
            # A plain TCP connection of a listener: its local address (if
            # the listener names one interface) and name are the listener's.
            # (lastActive: made in this reactor turn, by the listener.)
            self.localAddress = accepted.localAddress or t.getHost()
            if self.remoteAddress is None:
                self.remoteAddress = t.getPeer()
            if self.name is None:
                self.name = accepted.sessionName or self._defaultName(False)
            self._fire("connect")
            return
        self.localAddress = t.getHost()
        self.remoteAddress = t.getPeer()
        tls = isinstance(t, TLSMemoryBIOProtocol)
        if self.name is None:
            self.name = self._defaultName(tls)
        self.lastActive = self._clock.seconds()
        self._fire("connectTLS" if tls else "connect")

    def _defaultName(self, tls: bool) -> str:
        """
        @param tls: whether the transport is TLS.
        @return: the session's name when none was given: the transport's
            C{sessionName}, else made from its kind and local address.
        """
        return getattr(self.transport, "sessionName", None) or (
            "tls-session" if tls else f"{formatAddress(self.localAddress).split(':')[0]}-session"
        )

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake succeeded: open the session.
        """
        self._fire("handshake")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        @param reason: why the transport went away.
        """
        self._fire("lost", reason)

    def dataReceived(self, data: bytes) -> None:
        """
        Buffer the bytes and deliver every packet they complete.

        @param data: bytes from the transport.
        """
        self.bytesRead += len(data)
        self.lastActive = self._clock.seconds()
        state = self._state
        if state is S.OPEN:
            buf = self._buf
            buf += data
            # (self._delivery.isHeld, inlined: this is the path of every read.)
            if len(buf) >= self._need and self._delivery.waiting is None:
                self._process()
        elif state is S.OPENING:
            self._buf += data

    def messageReceived(self, data: bytes) -> None:
        """
        One message of a message transport (a WebSocket message, a UDP
        datagram): it is read by the codec on its own and must hold whole
        packets.  Messages that arrive while an awaited handler runs (or
        C{onOpen} is unfinished) wait in order, up to C{backlogHighMark};
        more are dropped.

        @param data: the message.
        """
        self.bytesRead += len(data)
        self.lastActive = self._clock.seconds()
        state = self._state
        if state is S.OPEN and self._delivery.waiting is None and not self._messages:
            readMessage = self._readMessage
            if readMessage is None or self._tasks is not None:
                self._processMessage(data)
                return
            # The common case, kept short (it is per message): a codec that
            # reads whole messages, no pool, and no batch in message mode.
            out: list[Any] = []
            try:
                readMessage(self, data, out)
            except Exception:
                self._deliverPackets(out, Failure())
                return
            if out:
                self.packetsRead += len(out)
                self._deliver(iter(out))
                if self._readComplete is not None and self._state is S.OPEN:
                    self._readDone()
        elif state is S.OPEN or state is S.OPENING:
            if self._messages is None:
                self._messages = WaitingMessages()
            self._messages.hold(data, self._cfg.backlogHighMark, self)

    def _processMessage(self, data: bytes) -> None:
        """
        Read one message with the codec and deliver its packets.

        @param data: the message.
        """
        out: list[Any] = []
        failure = readOneMessage(self, self._readMessage, self._readPackets, data, out)
        self._deliverPackets(out, failure)

    def _drainMessages(self) -> None:
        """
        Read the messages that waited, until a handler makes the session wait
        again.
        """
        messages = self._messages
        delivery = self._delivery
        while messages and self._state is S.OPEN and not delivery.isHeld:
            self._processMessage(messages.popleft())

    def _readOneByOne(self, buf: bytearray, out: list) -> int:
        """
        Apply a reader that only has getty's one-packet C{read} to a buffer
        (see L{readOneByOne <txgetty.session.reading.readOneByOne>}; called
        as a reader's C{readPackets} is).

        @param buf: the buffer; consumed bytes are removed.
        @param out: the list packets are appended to.
        @return: how many bytes the buffer must hold before the next call.
        """
        need, rest = readOneByOne(self, self._reader, self._cfg.maxMsgLen, buf, out)
        if rest is not buf:
            self._buf = rest
        return need

    # -- reading ----------------------------------------------------------------

    def _process(self) -> None:
        """
        Cut packets out of the buffer (the bytes of a byte stream: a message
        transport's session has none), deliver them, then handle a codec
        error or note an incomplete packet for C{packetTimeout}.
        """
        out: list[Any] = []
        failure = None
        try:
            self._need = self._readPackets(self, self._buf, out)
        except Exception:
            failure = Failure()
        if failure is None and out and self._tasks is None and not len(out) > self._cfg.maxPacketsPerTurn > 0:
            # (_deliverPackets' usual case, STREAM_DELIVERY's dispatchRead
            # inlined: the path of every read)
            self.packetsRead += len(out)
            self._dispatch(iter(out))
            failed = False
        else:
            failed = self._deliverPackets(out, failure)
        if not failed and self._buf:
            timers = self._timers
            if out or timers.partialSince is None:
                timers.partialPacket(self.lastActive)
        elif self._timers.partialSince is not None:
            self._timers.partialSince = None

    def _deliverPackets(self, out: list[Any], failure: Failure | None) -> bool:
        """
        Deliver the packets a read produced, then report the reader's
        failure if there was one.

        @param out: the packets.
        @param failure: what the reader raised, or C{None}.
        @return: whether a failure was reported.
        """
        if out:
            self.packetsRead += len(out)
            if self._tasks is not None:
                self._toPool(out)
            else:
                self._mode.dispatchRead(self, out)
        if failure is None:
            return False
        if not isinstance(failure.value, CodecError):
            # A bug in the reader (or a peer's bytes it did not expect):
            # log its traceback, close with a CodecError naming it.
            logSessionFailure(self, failure, "the session closes with a CodecError", "reader",
                              self._reader, routine=False)
            failure = Failure(CodecError(f"reader {self._reader!r} failed: {failure.value!r}"))
            self._fire("error", failure, ALREADY_LOGGED)
        else:
            self._fire("error", failure)
        return True

    def _dispatchStream(self, out: list[Any]) -> None:
        """
        Deliver the packets of one read of a byte stream (the C{dispatchRead}
        of L{STREAM_DELIVERY}; the usual case of L{_process} is inlined
        there): with their writes batched (see L{_dispatch}), more than
        C{maxPacketsPerTurn} spread over turns.

        @param out: the packets, in wire order.
        """
        if len(out) > self._cfg.maxPacketsPerTurn > 0:
            self._dispatchTurn(iter(out))
        else:
            self._dispatch(iter(out))

    def _dispatchStreamParked(self, packets: Iterator[Any]) -> None:
        """
        Deliver the packets that were parked behind an awaited handler or a
        yielded turn of a byte stream (the C{dispatchParked} of
        L{STREAM_DELIVERY}): a turn at a time if C{maxPacketsPerTurn} is set.

        @param packets: the parked packets.
        """
        if self._cfg.maxPacketsPerTurn:
            self._dispatchTurn(packets)
        else:
            self._dispatch(packets)

    def _dispatchMessages(self, packets: Iterable[Any]) -> None:
        """
        Deliver the packets of one message, or those parked behind a hold
        (the C{dispatchRead} and C{dispatchParked} of L{MESSAGE_DELIVERY}):
        every write is a message of its own anyway, so no batch, and no
        turns.

        @param packets: the packets, in wire order (a list or an iterator).
        """
        self._deliver(iter(packets))
        if self._readComplete is not None and self._state is S.OPEN:
            self._readDone()

    def _dispatch(self, packets: Iterator[Any]) -> None:
        """
        Deliver packets of a byte stream to C{onMessage}, collecting the
        writes they make into one transport write.

        @param packets: an iterator of packets; on a hold the rest is
            parked in the session's L{Delivery
            <txgetty.session.delivery.Delivery>}.
        """
        self._batch = []
        try:
            self._deliver(packets)
        finally:
            batch, self._batch = self._batch, None
            if batch:
                self._writeBatch(batch)
        if self._readComplete is not None and self._state is S.OPEN:
            self._readDone()

    def _readDone(self) -> None:
        """
        Tell the listener that a read's packets were delivered
        (L{IReadCompleteListener}); what it raises is a handler failure of
        C{onReadComplete}.
        """
        try:
            self._readComplete(self)  # type: ignore[misc]
        except Exception:
            self._handlerFailed(Failure(), "onReadComplete")

    def _dispatchTurn(self, packets: Iterator[Any]) -> None:
        """
        Deliver at most C{maxPacketsPerTurn} packets now; if more are left,
        hold delivery (and reading) until the next reactor turn, so that
        other sessions get theirs in between.  An awaited handler keeps the
        rest parked behind it.

        @param packets: an iterator over a list of packets, in wire order
            (its length hint is what is left; the packets a turn does not
            take stay in it).
        """
        self._dispatch(islice(packets, self._cfg.maxPacketsPerTurn))
        if self._state is not S.OPEN:
            return
        delivery = self._delivery
        if delivery.isHeld:
            # The handler of one of them is awaited: the rest waits behind it.
            delivery.park(packets)
        elif length_hint(packets):
            delivery.hold(self._clock.callLater(0, self._handlerFinished, None), packets)
            self._pauseReading("handler")

    def _writeBatch(self, batch: list[bytes]) -> None:
        """
        Hand a batch of writes to the transport, in one write (a batch is
        made on a byte stream only: see L{_dispatch}).

        @param batch: the encoded packets.
        """
        marks = self._marks
        if marks.through:
            if writeThrough(self.transport, b"".join(batch)) and marks.later:
                self._watchBuffered()
        else:
            self.transport.write(b"".join(batch))
        if marks.poll:
            self._checkWriteSize()
        if not marks.writable:
            self._checkOverflow()

    def _deliver(self, packets: Iterator[Any]) -> None:
        """
        Call C{onMessage} for each packet while the session is open; stop at
        a handler that returns an unfinished L{Deferred <twisted.internet.defer.Deferred>} or coroutine.

        @param packets: an iterator of packets.
        """
        onMessage = self._listener.onMessage
        while True:
            try:
                for pkg in packets:
                    result = onMessage(self, pkg)
                    if result is not None and self._awaitHandler(result, packets):
                        return
                    if self._state is not S.OPEN:
                        return
                return
            except Exception:
                self._handlerFailed(Failure(), "onMessage")
                if self._state is not S.OPEN:
                    return

    def _awaitHandler(self, result: Any, packets: Iterator[Any]) -> bool:
        """
        Deal with what C{onMessage} returned.

        @param result: the handler's return value.
        @param packets: the packets still to deliver.
        @return: C{True} if delivery must stop (waiting, or the session
            closed).
        """
        if isinstance(result, Deferred):
            d = result
        elif iscoroutine(result):
            d = ensureDeferred(result)
        else:
            return False
        box: list[Any] = []
        d.addBoth(box.append)
        if box:
            if isinstance(box[0], Failure):
                self._handlerFailed(box[0], "onMessage")
            return self._state is not S.OPEN
        self._delivery.hold(d, packets)
        self._pauseReading("handler")
        d.addCallback(lambda _: self._handlerFinished(box[0]))
        return True

    def _handlerFinished(self, result: Any) -> None:
        """
        An awaited handler finished, or a turn of delivery was over (see
        L{_dispatchTurn}): report the handler's failure, deliver the
        backlog, then what arrived meanwhile.

        @param result: the handler's result or L{Failure
            <twisted.python.failure.Failure>} (C{None} after a turn).
        """
        packets = self._delivery.resume()
        if isinstance(result, Failure):
            self._lateHandlerFailure(result, "onMessage")
        if self._state is S.OPEN and packets is not None:
            self._mode.dispatchParked(self, packets)
        if not self._delivery.isHeld and self._state is S.OPEN:
            self._resumeReading("handler")
            if self._buf and len(self._buf) >= self._need:
                self._process()
            self._drainMessages()
        self._endIfPeerDone()

    # -- writing ----------------------------------------------------------------

    def _closedError(self) -> SessionClosedError:
        """
        @return: the error a write to this session raises now.
        """
        why = self.closeReason.getErrorMessage() if self.closeReason else "not connected yet"
        return SessionClosedError(f"cannot write to {self!r}: it is {self._state.name.lower()} ({why})")

    def _send(self, data: bytes) -> None:
        """
        Send bytes now, or with the current batch.

        @param data: the bytes.
        """
        self.bytesWritten += len(data)
        batch = self._batch
        if batch is None:
            marks = self._marks
            if marks.through:
                if writeThrough(self.transport, data) and marks.later:
                    self._watchBuffered()
            else:
                self.transport.write(data)
            if marks.poll:
                self._checkWriteSize()
            if not marks.writable:
                self._checkOverflow()
        else:
            batch.append(data)

    def writePkg(self, pkg: Any) -> None:
        """
        Encode a packet with the writer and send it.

        @param pkg: the packet.
        @raise SessionClosedError: the session is closed or closing.
        """
        if not self._state.writable:
            raise self._closedError()
        data = self._writer.write(self, pkg)
        if RUNNING.pools and (outbox := currentOutbox()) is not None:
            outbox.call(self._writeFromPool, data, 1)
            return
        self.packetsWritten += 1
        # _send, inlined: this is the path of every packet written.
        self.bytesWritten += len(data)
        batch = self._batch
        if batch is not None:
            batch.append(data)
            return
        marks = self._marks
        if marks.through:
            if writeThrough(self.transport, data) and marks.later:
                self._watchBuffered()
        else:
            self.transport.write(data)
        if marks.poll:
            self._checkWriteSize()
        if not marks.writable:
            self._checkOverflow()

    def writePkgs(self, pkgs: Any) -> None:
        """
        Encode several packets and send them with one C{writeSequence}.

        @param pkgs: an iterable of packets.
        @raise SessionClosedError: the session is closed or closing.
        """
        if not self._state.writable:
            raise self._closedError()
        encode = self._writer.write
        chunks = [encode(self, p) for p in pkgs]
        if RUNNING.pools and (outbox := currentOutbox()) is not None:
            self._mode.queueChunks(self, outbox, chunks)
            return
        self.packetsWritten += len(chunks)
        self.bytesWritten += sum(map(len, chunks))
        if self._batch is None:
            self.transport.writeSequence(chunks)
            if self._marks.later:
                self._watchBuffered()
        else:
            self._batch.extend(chunks)

    def writeBytes(self, data: bytes) -> None:
        """
        Send raw bytes, bypassing the writer.

        @param data: bytes-like data.
        @raise SessionClosedError: the session is closed or closing.
        @raise TypeError: C{data} is not bytes-like.
        """
        if not self._state.writable:
            raise self._closedError()
        if not isinstance(data, bytes):
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError(f"writeBytes takes bytes, not {type(data).__name__}")
            data = bytes(data)
        if RUNNING.pools and (outbox := currentOutbox()) is not None:
            outbox.call(self._writeFromPool, data, 0)
            return
        self._send(data)

    def _writeFromPool(self, data: bytes, packets: int) -> None:
        """
        Send what a handler in a task-pool thread wrote (reactor thread, when
        its batch is done): dropped if the session closed meanwhile; a write
        the transport refuses is the handler's error (C{onError}, then the
        error policy).

        @param data: the encoded bytes.
        @param packets: how many packets they hold (0 for raw bytes).
        """
        if not self._state.writable:
            return
        try:
            self._send(data)
        except Exception:
            # As if the handler's write had raised (e.g. a packet too large
            # for one UDP datagram).
            self._lateHandlerFailure(Failure(), "onMessage")
        else:
            self.packetsWritten += packets

    def _queueStreamChunks(self, outbox: Outbox, chunks: list[bytes]) -> None:
        """
        In a task-pool thread, queue the packets a handler wrote with
        C{writePkgs} on a byte stream: as one write (the C{queueChunks} of
        L{STREAM_DELIVERY}).

        @param outbox: the outbox of the handler's batch.
        @param chunks: the encoded packets.
        """
        outbox.call(self._writeFromPool, b"".join(chunks), len(chunks))

    def _queueMessageChunks(self, outbox: Outbox, chunks: list[bytes]) -> None:
        """
        In a task-pool thread, queue the packets a handler wrote with
        C{writePkgs} on a message transport: a message each, as
        C{writeSequence} sends them (the C{queueChunks} of
        L{MESSAGE_DELIVERY}).

        @param outbox: the outbox of the handler's batch.
        @param chunks: the encoded packets.
        """
        for chunk in chunks:
            outbox.call(self._writeFromPool, chunk, 1)

    def _flush(self) -> None:
        """
        Send the writes of the current batch now (before a close).
        """
        batch = self._batch
        if batch:
            self._batch = []
            self._writeBatch(batch)

    # -- closing ----------------------------------------------------------------

    def close(self, reason: Any = None) -> Deferred | None:
        """
        Close the session: no more writes, flush pending output for up to
        C{waitTime} seconds, then abort.  Idempotent.

        @param reason: an optional text, exception or L{Failure <twisted.python.failure.Failure>} kept as
            C{closeReason}.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{None} once the connection is gone
            (called from a task-pool thread: C{None}; the close happens when
            the handler's batch ends).
        """
        if RUNNING.pools and (outbox := currentOutbox()) is not None:
            outbox.call(self.close, reason)
            return None
        self._fire("close", asFailure(reason))
        return self.whenClosed()

    def whenClosed(self) -> Deferred:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{None} once the connection is gone
            (after C{onClose} for an opened session).
        """
        d: Deferred = Deferred()
        if self._state.final:
            d.callback(None)
        else:
            self._waiters.append(d)
        return d

    def stat(self) -> str:
        """
        @return: one line with the state, addresses, counters and ages.
        """
        now = self._clock.seconds()
        return (
            f"{self.name or 'session'}#{self.id} {self._state.name} "
            f"{formatAddress(self.localAddress)} <- {formatAddress(self.remoteAddress)}: "
            f"read {self.packetsRead} pkgs/{self.bytesRead} B, "
            f"wrote {self.packetsWritten} pkgs/{self.bytesWritten} B, "
            f"age {now - self.startTime:.1f} s, idle {now - self.lastActive:.1f} s"
        )

    #: How a session on a byte stream (TCP, TLS, UNIX) delivers: the writes
    #: of one read's handlers batched into one transport write, a read of
    #: more than C{maxPacketsPerTurn} packets spread over turns.
    STREAM_DELIVERY = DeliveryMode("stream", False, _dispatchStream, _dispatchStreamParked, _queueStreamChunks)
    #: How a session on a message transport (WebSocket, UDP) delivers: each
    #: write a message of its own, no batch, no turns.
    MESSAGE_DELIVERY = DeliveryMode("messages", True, _dispatchMessages, _dispatchMessages, _queueMessageChunks)


#: The session's own one-packet-at-a-time reader loop, called as a codec's
#: C{readPackets} is (C{readPackets(session, buf, out)}).
_READ_ONE_BY_ONE: Callable[..., int] = Session.__dict__["_readOneByOne"]

#: The two ways of L{Session} to deliver (its C{STREAM_DELIVERY} and
#: C{MESSAGE_DELIVERY}), one chosen per connection in C{makeConnection}.
STREAM_DELIVERY = Session.STREAM_DELIVERY
MESSAGE_DELIVERY = Session.MESSAGE_DELIVERY
