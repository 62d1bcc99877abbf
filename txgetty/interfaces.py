"""
The interfaces of txgetty: every contract between the framework and the code
a user plugs into it.

getty's names map one to one: C{EventListener} is L{IEventListener}, its
C{Reader}/C{Writer}/C{ReadWriter} are L{IReader}/L{IWriter}/L{ICodec}, a
C{Session} is L{ISession}.

Service discovery's contracts are here too: the etcd operations that
registration and watching need (L{IEtcdClient}, provided by L{EtcdClient
<txgetty.discovery.etcd.EtcdClient>} and by the in-memory L{MemoryEtcd
<txgetty.discovery.testing.MemoryEtcd>}), a running watch (L{IEtcdWatch}),
and what a L{ServiceWatcher <txgetty.discovery.watcher.ServiceWatcher>}
tells the code that balances over the servers it finds
(L{IServerListListener}).  Their keys are text (UTF-8 on the wire); values
are bytes (a C{str} given is encoded as UTF-8).  Revisions and lease IDs are
Python C{int}s.  Every operation returns a L{Deferred
<twisted.internet.defer.Deferred>} that fails with an L{EtcdError
<txgetty.discovery.errors.EtcdError>}, with L{EtcdUnavailableError
<txgetty.discovery.errors.EtcdUnavailableError>} when etcd cannot be reached
or does not answer in time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from twisted.python.failure import Failure
from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred


#: The reasons a session stops reading from its transport, as bits of its
#: read-pause mask ("handler": an awaited handler, or a turn of delivery
#: that is over; "user": C{session.pauseReading()}).  Shared with the
#: transports that read for a session themselves (UDP), which test the
#: "backlog" and "pool" bits.
PAUSE_REASONS = {"opening": 1, "handler": 2, "backlog": 4, "pool": 8, "unwritable": 16, "user": 32, "eof": 64}


class IEventListener(Interface):
    """
    What a session tells the code that uses it.  Every method receives the
    L{ISession} concerned.

    The rules (the same on every transport):

      - C{onOpen} runs once the transport is up (after the TLS handshake).  If
        it raises or returns a L{Deferred <twisted.internet.defer.Deferred>}
        that fails, the connection is closed and the session never counts as
        open.
      - C{onClose} runs exactly once for every session that opened, whatever
        ended it; C{session.closeReason} says why.
      - C{onError} runs before C{onClose} only for an abnormal end (protocol
        or codec error, oversize packet, timeout, reset, failing handler).  It
        also runs, without C{onClose}, for a session that failed before it
        opened (a failed TLS handshake, a failing C{onOpen}).
      - C{onCron} runs every C{session.cronPeriod} seconds while the session
        is open, never after C{onClose}.
      - C{onMessage} runs once per complete packet, in wire order.
    """

    def onOpen(session: ISession) -> object:
        """
        The session is open: it may be written to.

        @param session: the new session.
        @return: anything; a L{Deferred <twisted.internet.defer.Deferred>} delays the opening until it fires.
        """

    def onClose(session: ISession) -> None:
        """
        The session is closed; nothing more can be written to it.

        @param session: the closed session; C{session.closeReason} is set.
        """

    def onError(session: ISession, failure: Failure) -> None:
        """
        Something went wrong with the session; it is being closed unless the
        session's C{handlerErrorPolicy} is C{"continue"} and the error came
        from a handler.

        @param session: the session concerned.
        @param failure: a L{Failure <twisted.python.failure.Failure>} whose
            value says what happened and, for a limit, which setting to change.
        """

    def onCron(session: ISession) -> None:
        """
        Periodic call, every C{session.cronPeriod} seconds while open.

        @param session: the session concerned.
        """

    def onMessage(session: ISession, pkg: object) -> object:
        """
        One complete packet arrived.

        @param session: the session it arrived on.
        @param pkg: the packet, as returned by the session's reader.
        """


class IReader(Interface):
    """
    Cuts a byte stream into packets (getty's C{Reader}).
    """

    def read(session: ISession, data: bytearray) -> tuple[Any | None, int]:
        """
        Look at the unconsumed bytes and say what they hold.  Return one of
        getty's four cases:

          - C{(None, 0)}: not enough bytes for a header yet;
          - C{(None, n)}: the header is parsed and the whole packet will be
            C{n} bytes long, header included (the session does not call again
            before it has C{n} bytes, and refuses C{n} above
            C{session.maxMsgLen} at once);
          - C{(pkg, n)}: one complete packet C{pkg}, which used the first
            C{n} bytes (C{pkg} is never C{None});
          - raise an exception (ideally L{txgetty.errors.CodecError}) for a
            broken stream: the session reports it to C{onError} and closes.

        @param session: the session the bytes came from (for per-session
            state: see L{ISession.readerState}).
        @param data: the unconsumed bytes, starting at a packet boundary.  It
            is the session's own buffer: only valid during the call, and not
            to be modified.
        """


class IWriter(Interface):
    """
    Turns a packet into bytes (getty's C{Writer}).
    """

    def write(session: ISession, pkg: Any) -> bytes:
        """
        Encode one packet.

        @param session: the session it will be written to.
        @param pkg: the packet.
        @return: the bytes to send.
        """


class ICodec(IReader, IWriter):
    """
    A reader and a writer of the same packet format (getty's C{ReadWriter}).
    """


class ISession(Interface):
    """
    One connection (or, for datagrams, one peer) and everything known about
    it.
    """

    name = Attribute("A short name for logs, e.g. C{'tcp-session'}.")
    id = Attribute("A number unique in this process.")
    localAddress = Attribute("The L{IAddress <twisted.internet.interfaces.IAddress>} of this end, or C{None}.")
    remoteAddress = Attribute("The L{IAddress <twisted.internet.interfaces.IAddress>} of the peer, or C{None}.")
    listener = Attribute("The L{IEventListener} that receives the events.")
    reader = Attribute("The L{IReader} that cuts incoming bytes into packets.")
    writer = Attribute("The L{IWriter} that encodes outgoing packets.")
    readerState = Attribute(
        "A slot a reader may use for its per-session parsing state; "
        "C{None} at the start of every session."
    )
    bytesRead = Attribute("Bytes received.")
    bytesWritten = Attribute("Bytes handed to the transport.")
    packetsRead = Attribute(
        "Packets cut from the input (delivered to C{onMessage} unless the "
        "session closed first)."
    )
    packetsWritten = Attribute("Packets written with C{writePkg}/C{writePkgs}.")
    pendingBytes = Attribute("Bytes written and not yet handed to the kernel.")
    startTime = Attribute("When the session was created (clock seconds).")
    lastActive = Attribute("When bytes last arrived (clock seconds).")
    isClosed = Attribute("C{True} once the session stops accepting writes.")
    closeReason = Attribute(
        "A L{Failure <twisted.python.failure.Failure>} saying why the session "
        "closed, or C{None} while it is open."
    )
    acceptsWrites = Attribute(
        "C{True} while writes are accepted (C{writePkg} raises L{SessionClosedError"
        " <txgetty.errors.SessionClosedError>} otherwise)."
    )
    backlogFull = Attribute(
        "C{True} while reading is paused because the task-pool backlog (C{backlogHighMark}) or the pool is full."
    )
    taskBacklog = Attribute("Packets handed to the task pool and not finished yet (bounded by C{backlogHighMark}).")
    maxMsgLen = Attribute("Largest packet accepted, in bytes.")
    cronPeriod = Attribute("Seconds between two C{onCron} calls.")
    waitTime = Attribute("Seconds C{close()} waits for output to drain.")
    readIdleTimeout = Attribute("Seconds without input before closing; 0: off.")
    packetTimeout = Attribute(
        "Seconds a started packet may take to arrive completely; 0: off."
    )
    handlerErrorPolicy = Attribute(
        "C{'close'} (default) or C{'continue'}: what an exception raised by "
        "C{onMessage} or C{onCron} does after C{onError} has seen it."
    )
    firstPacketTimeout = Attribute(
        "Seconds from connecting until the first complete packet of a stream "
        "session; 0: off."
    )
    writeTimeout = Attribute(
        "Seconds the session may stay unwritable with the peer taking none of "
        "the bytes waiting; 0: off."
    )
    maxPacketsPerTurn = Attribute(
        "Packets handed to C{onMessage} per reactor turn before other sessions "
        "get theirs; 0: no bound."
    )
    openTimeout = Attribute(
        "Seconds a connection may take to open (TLS handshake, C{onOpen}); 0: off."
    )
    tcpNoDelay = Attribute("Disable Nagle's algorithm on TCP connections.")
    tcpKeepAlive = Attribute("Send TCP keepalive probes.")
    keepAlivePeriod = Attribute("Idle seconds before the first TCP keepalive probe.")
    writeHighMark = Attribute("Bytes waiting above which the session is unwritable.")
    writeLowMark = Attribute("Bytes waiting below which it is writable again.")
    maxPendingBytes = Attribute(
        "Bytes waiting above which the session is closed (its peer does not read)."
    )
    pauseReadingWhenUnwritable = Attribute("Stop reading from the peer while unwritable.")
    backlogHighMark = Attribute("Packets waiting for the task pool above which reading pauses.")
    backlogLowMark = Attribute("Packets waiting below which reading resumes.")

    def getAttribute(key: object, default: object = None) -> object:
        """
        @param key: the attribute's key.
        @param default: returned when the key is not set.
        @return: the value stored under C{key}.
        """

    def setAttribute(key: object, value: object) -> None:
        """
        @param key: the attribute's key.
        @param value: the value to store.
        """

    def removeAttribute(key: object) -> None:
        """
        @param key: the attribute's key; no error if it is not set.
        """

    def writePkg(pkg: object) -> None:
        """
        Encode C{pkg} with the writer and send it.

        @param pkg: the packet.
        @raise txgetty.errors.SessionClosedError: the session is closed.
        """

    def writePkgs(pkgs: object) -> None:
        """
        Encode several packets and send them with one C{writeSequence}.

        @param pkgs: an iterable of packets.
        @raise txgetty.errors.SessionClosedError: the session is closed.
        """

    def writeBytes(data: bytes) -> None:
        """
        Send raw bytes, bypassing the writer.

        @param data: the bytes.
        @raise txgetty.errors.SessionClosedError: the session is closed.
        """

    def close(reason: object = None) -> object:
        """
        Close the session: stop accepting writes, flush what is pending for
        up to C{waitTime} seconds, then abort.  Calling it again does nothing
        more.

        @param reason: an optional text or exception kept in C{closeReason}.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} that fires with C{None} once the connection is
            gone (after C{onClose}).
        """

    def fail(failure: Failure | BaseException) -> None:
        """
        Close the session as failed (C{onError} with C{failure} if it is
        open, then close; dropped if it is not open yet).

        @param failure: a L{Failure <twisted.python.failure.Failure>} or an
            exception.
        """

    def stat() -> str:
        """
        @return: one line of text with the session's counters and state.
        """


class ITimerWheel(Interface):
    """
    A coarse timer shared by many sessions: one reactor timer drives every
    call scheduled on it.
    """

    tick = Attribute("The wheel's resolution in seconds.")

    def callLater(delay: float, f: Callable[..., object], *args: object, **kw: object) -> object:
        """
        Call C{f(*args, **kw)} once, C{delay} seconds from now, rounded up to
        the next tick.

        @param delay: seconds from now.
        @param f: the callable.
        @param args: positional arguments for C{f}.
        @param kw: keyword arguments for C{f}.
        @return: an L{IDelayedCall <twisted.internet.interfaces.IDelayedCall>}.
        """

    def seconds() -> float:
        """
        @return: the current time of the wheel's clock.
        """


class IServer(Interface):
    """
    A service that accepts sessions on one or more endpoints.
    """

    def whenListening() -> object:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the list of bound addresses once
            every endpoint listens, or failing if one cannot.
        """

    def sessions() -> Sequence[ISession]:
        """
        @return: the sessions currently connected.
        """

    def datagramDrops() -> dict[str, int]:
        """
        @return: the datagrams the server's UDP listeners dropped so far, by
            kind: C{oversize} (larger than C{maxMsgLen}), C{peers} (from new
            peers beyond C{maxPeers}), C{backlog} (for a session whose
            task-pool backlog was full); zeros without UDP listeners.
        """


class ISessionFactory(Interface):
    """
    What the transports and listening ports need from the server they feed
    (L{Server <txgetty.server.server.Server>} provides it): a new session
    per connection or datagram peer, the clock and the settings every
    session starts with.  A transport knows its server only through this.
    """

    reactor = Attribute("The reactor: time, delayed calls, threads (C{IReactorTime}).")
    config = Attribute("The L{SessionConfig <txgetty.config.SessionConfig>} every session starts with.")

    def newSession(addr: object, name: str | None = None, cap: object = None,
                   accepted: object = None) -> ISession:
        """
        Make a session for a new connection (or UDP peer), owned and counted
        by the server; the caller connects it to its transport.

        @param addr: the peer's address.
        @param name: the session's name for logs (derived from the transport
            if C{None}).
        @param cap: the L{SessionCap <txgetty.server.ports.SessionCap>} to
            release when the session is gone, if any.
        @param accepted: what a TCP listener's connections take from its
            listening socket (L{AcceptedSockets
            <txgetty.transports.sockets.AcceptedSockets>}: TCP options, local
            address), or C{None}.
        @return: the new session, not yet connected.
        """


class ICallOwner(Interface):
    """
    What the client side of an RPC connection (L{ClientConnection
    <txgetty.rpc.calling.ClientConnection>}) needs from its client
    (L{RpcClient <txgetty.rpc.client.RpcClient>} provides it): answers and
    lost calls, and its comings and goings, reported.  The connection knows
    its client only through this.
    """

    serializer = Attribute("The serializer code of the client's frames (heartbeats are sent with it).")

    def connectionOpened(session: Any) -> None:
        """
        @param session: the session of a connection that opened.
        """

    def connectionClosed() -> None:
        """
        A connection closed (its calls were reported lost already).
        """

    def callAnswered(pending: Any, frame: Any) -> None:
        """
        @param pending: a call (L{ClientCall <txgetty.rpc.calling.ClientCall>}) whose response arrived.
        @param frame: the response L{Frame <txgetty.rpc.frame.Frame>}.
        """

    def callLost(pending: Any, error: Exception) -> None:
        """
        @param pending: a call whose connection closed before its answer.
        @param error: what it fails with unless it is retried.
        """

    def serverIdle(address: str) -> None:
        """
        @param address: a server none of whose connections has calls
            pending any more.
        """


class ICallDispatcher(Interface):
    """
    What the server side of an RPC connection (L{RpcConnection
    <txgetty.rpc.connection.RpcConnection>}) needs from its server
    (L{RpcServer <txgetty.rpc.server.RpcServer>} provides it): its
    comings and goings reported, its requests and oneways run.  The
    connection knows its server only through this.
    """

    auth = Attribute("The auth callable, or C{None}: a connection's requests run without a check.")
    draining = Attribute("Whether the server is stopping: a connection that opens gets the going-away notice.")

    def connectionOpened(connection: Any) -> None:
        """
        @param connection: a connection whose session opened.
        """

    def connectionClosed(connection: Any) -> None:
        """
        @param connection: a connection whose session closed (its calls are
            cancelled already).
        """

    def request(connection: Any, frame: Any) -> None:
        """
        Run one request or oneway of an authenticated connection; its answer
        goes out through C{connection.respond}.

        @param connection: the connection.
        @param frame: the request or oneway L{Frame <txgetty.rpc.frame.Frame>}.
        """

    def countAnswered(connection: Any) -> None:
        """
        Count the calls a connection answered at once in its last read
        (listed in its C{answered}, the read's arrival in its
        C{answeredSince}), and empty the list.

        @param connection: the connection.
        """

    def authenticate(connection: Any, frame: Any) -> Deferred[Any]:
        """
        Check a connection's first request or oneway with the auth callable,
        then run it (accepted) or refuse it and close the connection.

        @param connection: the connection, not authenticated yet.
        @param frame: its first request or oneway.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once
            decided (the connection's next frames wait for it).
        """


class IClient(Interface):
    """
    A service that keeps a pool of sessions open to one server.
    """

    def whenConnected() -> object:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with an open session as soon as one is
            open.
        """

    def whenAllConnected(count: int | None = None) -> object:
        """
        @param count: how many open sessions to wait for (default: all).
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the open sessions.
        """

    def session() -> ISession:
        """
        @return: an open session, chosen by the client's policy.
        """

    def sessions() -> Sequence[ISession]:
        """
        @return: the open sessions.
        """

    def slotStates() -> Sequence[str]:
        """
        @return: the state of each connection slot of the pool, by name
            (C{"OPEN"}, C{"WAITING"}, C{"GAVE_UP"}, ...), in slot order.
        """

    def allGaveUp() -> bool:
        """
        @return: whether no connection slot will open a session any more
            (each gave up after C{maxAttempts} failures, or is stopped).
        """


class ISlotOwner(Interface):
    """
    What a client pool offers its connection slots (L{Slot
    <txgetty.client.slot.Slot>}): the settings of a dial, the counters a
    slot adds to, and the reports a slot makes.  The slot knows its pool
    only through this.
    """

    label = Attribute("The server address as text, for logs (C{str}).")
    clock = Attribute("The reactor: time, delayed calls (C{IReactorTime}).")
    wheel = Attribute("The L{ITimerWheel} every session of the pool uses.")
    config = Attribute("The L{SessionConfig <txgetty.config.SessionConfig>} every session starts with.")
    taskPool = Attribute("The L{ITaskPool} of the sessions, or C{None}.")
    endpoint = Attribute("The C{IStreamClientEndpoint} a slot dials.")
    connectTimeout = Attribute("Seconds an attempt may take until the session is open (C{float}).")
    reconnect = Attribute("The L{ReconnectPolicy <txgetty.client.reconnect.ReconnectPolicy>} of the backoff.")
    random = Attribute("The C{random.Random} of the backoff's jitter.")
    dials = Attribute("Connection attempts made (C{int}, a slot adds to it).")
    failures = Attribute("Attempts that failed (C{int}, a slot adds to it).")
    selfConnects = Attribute("Attempts that connected to themselves (C{int}, a slot adds to it).")

    def configureNewSession(session: Any) -> object:
        """
        Run the application's new-session callback on a connected session.

        @param session: the session, not open yet.
        @return: what the callback returned (C{False} refuses the session).
        """

    def slotOpened(slot: Any) -> None:
        """
        @param slot: a slot whose session opened (its C{session}).
        """

    def slotSessionEnded(session: Any) -> None:
        """
        @param session: a session of a slot that ended, open or not.
        """

    def slotGaveUp(slot: Any) -> None:
        """
        @param slot: a slot that stopped trying after C{maxAttempts} failures.
        """


class IReadCompleteListener(Interface):
    """
    An optional listener method for listeners that batch their work over a
    read (netty's C{channelReadComplete}); L{EventListener} does not have
    it, so that sessions of listeners without it make no call.
    """

    def onReadComplete(session: ISession) -> None:
        """
        The packets of one read were delivered to C{onMessage} in the
        reactor thread (those that could be: a handler that makes the
        session wait holds the rest) and the writes they made were handed to
        the transport.  Not called for packets that go to a task pool, nor
        once the session closed.

        @param session: the open session.
        """


class IWritabilityListener(Interface):
    """
    An optional sixth listener method, for listeners that watch outbound flow
    control (L{EventListener} provides it as a no-op).
    """

    def onWritabilityChanged(session: ISession) -> None:
        """
        C{session.isWritable()} changed: more than C{writeHighMark} bytes wait
        to be written, or they went back under C{writeLowMark}.

        @param session: the session concerned.
        """


class ITaskSource(Interface):
    """
    What hands items to an L{ITaskPool} (a session, through
    L{txgetty.session.pooling.SessionTasks}): the pool runs each item with
    L{runTask} in a worker thread and reports back with L{tasksDone} in the
    reactor thread.  Sources are hashable (the pool keys its queues by
    them).
    """

    def runTask(item: object, errors: list) -> None:
        """
        Run one item (worker thread); must not raise.

        @param item: the item, as delivered.
        @param errors: where to put what it wants reported in
            L{tasksDone}; an ordered pool ends the batch at the first.
        """

    def tasksDone(count: int, errors: list) -> None:
        """
        Some items finished (reactor thread), after what they asked of the
        reactor thread was applied.

        @param count: how many.
        @param errors: what L{runTask} collected for them.
        """

    def pauseIntake() -> None:
        """
        The pool holds more than it should: deliver nothing more until
        L{resumeIntake} (reactor thread).
        """

    def resumeIntake() -> None:
        """
        The pool is half empty again (reactor thread).
        """


class ITaskPool(Interface):
    """
    Runs the items of L{ITaskSource}s in worker threads.
    """

    ordered = Attribute("Whether each source's items run one at a time, in order.")

    def deliver(source: ITaskSource, items: list) -> None:
        """
        Queue items of a source (reactor thread).

        @param source: where they come from.
        @param items: the items, in order.
        """

    def discard(source: ITaskSource) -> int:
        """
        Drop the items of a source that wait to run (reactor thread).

        @param source: the source.
        @return: how many were dropped.
        """

    def awaitInReactor(awaitable: object) -> object:
        """
        Worker thread: run a coroutine or wait for a Deferred in the reactor
        thread, blocking the worker until it is done.

        @param awaitable: the coroutine or Deferred.
        @return: its result or failure.
        """


class IEtcdWatch(Interface):
    """
    A running watch of a key prefix (see L{IEtcdClient.watchPrefix}).
    """

    prefix = Attribute("The key prefix watched (C{str}).")
    revision = Attribute("The store revision when etcd created the watch (C{int}).")

    def stop() -> Deferred[Any]:
        """
        Cancel the watch: no event is delivered after this call.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{None} once the stream is closed
            (at once if the watch already ended).
        """

    def whenDone() -> Deferred[Any]:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} that fires with C{None} once L{stop} ended
            the watch, or fails with the reason it ended otherwise:
            L{EtcdWatchCanceledError
            <txgetty.discovery.errors.EtcdWatchCanceledError>} (etcd
            cancelled it, e.g. after a compaction),
            L{EtcdUnavailableError
            <txgetty.discovery.errors.EtcdUnavailableError>} (the stream was
            lost).
        """


class IEtcdClient(Interface):
    """
    The etcd v3 operations service discovery uses.
    """

    url = Attribute("The etcd endpoint, C{http://HOST:PORT} (C{str}).")

    def grantLease(ttl: int) -> Deferred[Any]:
        """
        Create a lease.

        @param ttl: its time to live in seconds; etcd raises a TTL below its
            minimum (2 s with its default election timeout) to that minimum.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the lease ID (C{int}).
        """

    def keepAliveOnce(leaseID: int) -> Deferred[Any]:
        """
        Renew a lease once.

        @param leaseID: the lease.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the lease's TTL after renewal in
            seconds, or C{0} when the lease no longer exists.
        """

    def revokeLease(leaseID: int) -> Deferred[Any]:
        """
        Revoke a lease: etcd deletes every key attached to it, at once.

        @param leaseID: the lease.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{True}, or C{False} when the
            lease no longer existed.
        """

    def leaseTimeToLive(leaseID: int) -> Deferred[Any]:
        """
        @param leaseID: the lease.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the seconds the lease has left,
            C{-1} when it does not exist.
        """

    def put(key: str, value: bytes | str, lease: int | None = None) -> Deferred[Any]:
        """
        Set a key.

        @param key: the key.
        @param value: its value.
        @param lease: a lease to attach the key to (deleted with it).
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the store revision of the write.
        @raise EtcdLeaseNotFoundError: (in the Deferred) the lease does not
            exist.
        """

    def get(key: str) -> Deferred[Any]:
        """
        @param key: the key.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with its value (C{bytes}), or C{None}
            when it does not exist.
        """

    def delete(key: str) -> Deferred[Any]:
        """
        Delete a key.

        @param key: the key.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the number of keys deleted (0 or
            1).
        """

    def getPrefix(prefix: str) -> Deferred[Any]:
        """
        Read every key that starts with a prefix, in one consistent read.

        @param prefix: the prefix (not empty).
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{(revision, {key: value})}: the
            store revision of the read and the keys found.
        """

    def watchPrefix(prefix: str, startRevision: int, onEvent: Callable[[Any], None]) -> Deferred[Any]:
        """
        Watch every key that starts with a prefix.

        @param prefix: the prefix (not empty).
        @param startRevision: the first revision to report (the revision of
            a L{getPrefix} plus one misses nothing); C{0} means "from now".
        @param onEvent: called with each L{WatchEvent
            <txgetty.discovery.WatchEvent>}, in revision order.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with an L{IEtcdWatch} once etcd has
            created the watch.
        """

    def version() -> Deferred[Any]:
        """
        A cheap request that shows etcd answers.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with etcd's version, e.g.
            C{{"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}}.
        """

    def close() -> Deferred[Any]:
        """
        Stop every watch and close idle connections.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once done.
        """


class IEtcdWatchClient(Interface):
    """
    What an L{EtcdWatch <txgetty.discovery._watch.EtcdWatch>} asks of the
    client that made it: the etcd URL and the words for what went wrong
    (provided by L{EtcdClient <txgetty.discovery.etcd.EtcdClient>}).
    """

    url = Attribute("The etcd endpoint, C{http://HOST:PORT} (C{str}).")

    def decodeAnswer(path: str, code: int, body: bytes) -> Any:
        """
        @param path: the gateway path.
        @param code: the HTTP status.
        @param body: the HTTP body.
        @return: the answer: the JSON object, or for a streaming call the
            C{result} of its first message.
        @raise EtcdError: etcd answered an error, or not in JSON.
        """

    def errorFromMessage(path: str, data: dict[str, Any], leaseID: int | None = None) -> Exception:
        """
        @param path: the gateway path.
        @param data: an error message of the gateway.
        @param leaseID: the lease the request named, for the message.
        @return: the matching L{EtcdError
            <txgetty.discovery.errors.EtcdError>}.
        """

    def watchFailed(failure: Failure) -> Exception:
        """
        @param failure: what the HTTP agent or the stream of a watch failed
            with.
        @return: the exception to end the watch with.
        """


class IServerListListener(Interface):
    """
    Told by a L{ServiceWatcher <txgetty.discovery.watcher.ServiceWatcher>}
    when the servers of a service change.
    """

    def onServersChanged(added: object, removed: object) -> None:
        """
        Servers joined or left.

        Both arguments map an address (C{"host:port"}) to its L{ServerEntry
        <txgetty.discovery.watcher.ServerEntry>}.  A server whose entry
        changed under the same address (restarted, new weight) is in both:
        C{removed} holds the old entry and C{added} the new one; apply
        C{removed} first.

        @param added: the servers that joined.
        @param removed: the servers that left.
        """
