"""
The RPC server: named services on a txgetty server, answered with frames of
L{txgetty.rpc.frame}.

A call runs in the reactor thread (plain, L{Deferred <twisted.internet.defer.Deferred>} or C{async def}
methods) or, for methods marked blocking, in the task pool.  What a method
raises becomes an error response; the connection stays open.  A connection
has at most C{maxInFlight} unfinished calls (more get an immediate
C{ServerBusy} error).  A caller's deadline (C{timeout-ms}) cancels the call
when it passes, and no late response is sent, as after a cancel frame.

The parts: L{txgetty.rpc.connection} (a connection's listener, which
reaches this server as an L{ICallDispatcher
<txgetty.interfaces.ICallDispatcher>}), L{txgetty.rpc.calls} (one call: its
info, deadline, log fields and error head), L{txgetty.rpc.services} (the
registry), L{txgetty.rpc.body} (argument and result bodies).
"""

from __future__ import annotations

import inspect
from bisect import bisect_left
from dataclasses import replace
from functools import lru_cache
from types import CoroutineType
from typing import Any, Iterable, Sequence

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred, succeed
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.python.reflect import safe_str
from zope.interface import implementer

from ..config import DEFAULT_LISTEN_BACKLOG, DEFAULT_MAX_SESSIONS, SessionConfig
from ..errors import ConfigError, SessionClosedError
from ..histogram import LATENCY_BOUNDS, OTHER, CallStats, Histogram
from ..interfaces import ICallDispatcher
from ..server import Server
from . import frame as F
from .errors import BadResponse, FrameError, ResponseTooLarge, ServiceError
from .body import NO_KWARGS, decodeArguments, encodeBody
from .builtin import Health
from .calls import (
    CURRENT_CALL,
    MAX_ERROR_TEXT,
    CallInfo,
    PendingCall,
    acceptedCompressor,
    callFields,
    compressorFor,
    currentCall,
    cutText,
    deadlineOf,
    describeCall,
    errorCode,
    errorHead,
    parseDeadline,
    quiet,
    runningTrace,
)
from .connection import RpcConnection
from .refusals import refusalHead
from .services import Method, ServiceRegistry
from .tracing import OTEL, TRACEPARENT, CallTrace, TracerWatch, refusedSpan, serverTrace
from ..transports.addresses import formatAddress
from .serializers import (
    DEFAULT_COMPRESS_THRESHOLD,
    JSON,
    MSGPACK,
    NONE,
    SERIALIZERS,
)

_log = Logger()

__all__ = ["RpcServer", "CallInfo", "currentCall", "runningTrace", "callFields", "cutText", "errorCode", "errorHead",
           "compressorFor", "MAX_ERROR_TEXT", "DEFAULT_MAX_IN_FLIGHT", "DEFAULT_IDLE_TIMEOUT",
           "DEFAULT_SHUTDOWN_TIMEOUT"]

DEFAULT_MAX_IN_FLIGHT = 256
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
#: Seconds a stopping server keeps a connection open, once its calls are
#: answered, for its client to close it (requests already on their way are
#: still read, and answered C{ShuttingDown}); at most what is left of the
#: shutdown timeout.
DRAIN_GRACE = 1.0


#: Serializers whose uncompressed requests take the short path of
#: L{RpcServer.request} (msgpack only when its extra is installed).
_QUICK = frozenset(code for code in (JSON, MSGPACK) if code in SERIALIZERS)
#: The C{loads} of each of them: an uncompressed body of one of these that is
#: a plain list of arguments takes the short path of L{RpcServer.request}
#: (anything else goes through L{decodeArguments
#: <txgetty.rpc.body.decodeArguments>}, which words any error).
_QUICK_LOADS = {code: SERIALIZERS[code].loads for code in _QUICK}
#: And their C{dumps}, for the answers of the short path.
_QUICK_DUMPS = {code: SERIALIZERS[code].dumps for code in _QUICK}


#: Result types that are surely not a L{Deferred <twisted.internet.defer.Deferred>}: checked before the
#: (slower, ABC-based) isinstance test.
_PLAIN_RESULTS = frozenset({str, bytes, int, float, bool, type(None), list, dict, tuple})


@implementer(IService, ICallDispatcher)
class RpcServer(Service):
    """
    Named services over txgetty's wire frame (an L{IService <twisted.application.service.IService>}).

    @ivar registry: the L{ServiceRegistry}.
    @ivar server: the underlying L{txgetty.Server}.
    @ivar calls: requests answered (with a result or an error, refusals
        included) and oneways neither refused nor cancelled.
    @ivar errors: requests answered with an error, oneways that failed, and
        oneways refused (which C{calls} does not count).
    @ivar busy: requests and oneways refused with C{ServerBusy}.
    @ivar cancelled: calls the server cancelled (deadline, cancel frame,
        closed connection): not answered, and counted in neither C{calls}
        nor C{errors}.
    @ivar callStats: every call by service, method and outcome, with its
        latency (what L{txgetty.metrics} exposes).
    """

    def __init__(
        self,
        endpoints: Sequence[Any] = ("tcp:8091:interface=127.0.0.1",),
        *,
        reactor: Any = None,
        config: SessionConfig | None = None,
        tls: Any = None,
        taskPool: Any = None,
        maxInFlight: int = DEFAULT_MAX_IN_FLIGHT,
        auth: Any = None,
        hooks: Iterable[Any] = (),
        idleTimeout: float | None = None,
        shutdownTimeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        compressor: str | int = "none",
        compressThreshold: int = DEFAULT_COMPRESS_THRESHOLD,
        raiseSynchronously: bool = False,
        maxSessions: int = DEFAULT_MAX_SESSIONS,
        backlog: int = DEFAULT_LISTEN_BACKLOG,
    ) -> None:
        """
        @param endpoints: where to listen (as for L{txgetty.Server}).
        @param reactor: the reactor; the global one if C{None}.
        @param config: session settings (C{readIdleTimeout} is set from
            C{idleTimeout}; C{maxMsgLen} limits request and response
            frames).
        @param tls: TLS files for C{tls:}/C{wss://} listeners.
        @param taskPool: the L{TaskPool <txgetty.taskpool.TaskPool>} for
            methods marked blocking (they fail without one).
        @param maxInFlight: unfinished calls per connection before
            C{ServerBusy} errors.
        @param auth: C{auth(token, session)} returning true (or a Deferred
            of it) to accept a connection's first request; the token is the
            request's C{auth} head entry.  A refusal answers C{AuthError},
            is logged (without the token) and closes the connection.
        @param hooks: objects with any of C{connected(session)},
            C{disconnected(session)}, C{beforeCall(info)},
            C{afterCall(info, result)} (C{result} a L{Failure <twisted.python.failure.Failure>} for errors).
        @param idleTimeout: seconds without any frame before a connection is
            closed (0: never); clients send heartbeats.  By default the
            C{config}'s C{readIdleTimeout} if it sets one, else 300.
        @param shutdownTimeout: seconds L{stopService} waits for calls in
            flight.
        @param compressor: compressor for responses whose request was not
            compressed (by name or code).
        @param compressThreshold: bytes above which a response body is
            compressed.
        @param raiseSynchronously: as for L{txgetty.Server}.
        @param maxSessions: the connections each listener that names none
            holds at most (0: no cap), as for L{txgetty.Server}.
        @param backlog: the listen backlog of each listener that names
            none, as for L{txgetty.Server}.
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.reactor = reactor
        self.registry = ServiceRegistry()
        #: The registry's table, read on every call (L{ServiceRegistry.services}).
        self._services = self.registry.services
        #: When to look for an OpenTelemetry tracer (not on every call).
        self._tracers = TracerWatch()
        #: The "ok" latency histogram of each method answered at once, by
        #: qualified name (hashing a Method itself costs a Python call).
        self._okCalls: dict[str, Histogram] = {}
        self.maxInFlight = maxInFlight
        self.auth = auth
        self.hooks = list(hooks)
        self.shutdownTimeout = shutdownTimeout
        try:
            self.compressor = compressorFor(compressor)
        except FrameError as e:
            raise ConfigError(str(e)) from None
        self.compressThreshold = compressThreshold
        self.taskPool = taskPool
        self.connections: set[RpcConnection] = set()
        self.calls = self.errors = self.busy = self.cancelled = 0
        self.callStats = CallStats()
        self.started = reactor.seconds()
        self._draining = False
        config = config or SessionConfig()
        if idleTimeout is None:
            idleTimeout = config.readIdleTimeout or DEFAULT_IDLE_TIMEOUT
        config = replace(config, readIdleTimeout=idleTimeout)
        self.server = Server(list(endpoints), self._newSession, reactor=reactor, config=config, tls=tls,
                             raiseSynchronously=raiseSynchronously, name="txgetty rpc",
                             maxSessions=maxSessions, backlog=backlog)
        self.register(Health(self))
        #: Health.check answers while the server drains (NOT_SERVING).
        self._healthCheck = self.registry.lookup("Health", "check")

    @property
    def draining(self) -> bool:
        """
        Whether the server is stopping: its connections got the going-away
        notice, new calls are answered C{ShuttingDown}.
        """
        return self._draining

    @property
    def serving(self) -> bool:
        """
        Whether the server takes calls: started and neither draining nor
        stopped (what C{Health.check} answers, as C{SERVING}).
        """
        return bool(self.running) and not self._draining

    def register(self, obj: Any, name: str | None = None) -> str:
        """
        Expose an object's methods as a service (see L{ServiceRegistry}).

        @param obj: the service object.
        @param name: its name (default: the class name).
        @return: the name.
        """
        return self.registry.register(obj, name)

    def addHook(self, hook: Any) -> None:
        """
        @param hook: an object with any of C{connected}, C{disconnected},
            C{beforeCall}, C{afterCall}.
        """
        self.hooks.append(hook)

    def whenListening(self) -> Deferred:
        """
        @return: the underlying server's L{whenListening
            <txgetty.Server.whenListening>}.
        """
        return self.server.whenListening()

    def status(self) -> dict[str, Any]:
        """
        @return: the server's counters (the built-in C{Status.status}):
            C{connections}, C{calls}, C{errors}, C{busy}, C{cancelled},
            C{inFlight} (integers), C{uptime} (seconds, rounded to
            milliseconds) and C{services} (each service's sorted method
            names, by service name).
        """
        return {
            "connections": len(self.connections), "calls": self.calls, "errors": self.errors,
            "busy": self.busy, "cancelled": self.cancelled, "inFlight": sum(len(c.calls) for c in self.connections),
            "uptime": round(self.reactor.seconds() - self.started, 3), "services": self.registry.names(),
        }

    # -- IService -------------------------------------------------------------

    def startService(self) -> None:
        """
        Listen.
        """
        Service.startService(self)
        self._draining = False
        self.server.startService()

    def stopService(self) -> Deferred:
        """
        Stop accepting connections and calls: send every connection the
        going-away notice, answer new requests C{ShuttingDown}, let the
        calls in flight finish for up to C{shutdownTimeout} seconds, give
        the clients up to L{DRAIN_GRACE} seconds more to close their
        connections, then close every connection.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once everything is closed.
        """
        Service.stopService(self)
        self._draining = True
        end = self.reactor.seconds() + self.shutdownTimeout
        for connection in list(self.connections):
            connection.goingAway()
        d = self.server.stopListening()
        d.addCallback(lambda _: self._drained(end))
        d.addCallback(lambda _: self._released(end))
        d.addCallback(lambda _: self.server.stopService())
        return d

    def _drained(self, end: float) -> Deferred:
        """
        @param end: when the shutdown timeout passes (clock seconds).
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing when no call is in flight, or at
            C{end}.
        """
        pending = [call.deferred for c in self.connections for call in c.calls.values()]
        if not pending:
            return succeed(None)
        waiting = DeferredList([quiet(d) for d in pending], consumeErrors=True)
        waiting.addTimeout(max(0.0, end - self.reactor.seconds()), self.reactor, onTimeoutCancel=lambda *_: None)
        return waiting.addBoth(lambda _: None)

    def _released(self, end: float) -> Deferred:
        """
        @param end: when the shutdown timeout passes (clock seconds).
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once every client closed its
            connection, or after L{DRAIN_GRACE} seconds (at most at C{end}).
        """
        sessions = [c.session for c in self.connections if c.session is not None]
        grace = min(DRAIN_GRACE, max(0.0, end - self.reactor.seconds()))
        if not sessions or not grace:
            return succeed(None)
        waiting = DeferredList([s.whenClosed() for s in sessions], consumeErrors=True)
        waiting.addTimeout(grace, self.reactor, onTimeoutCancel=lambda *_: None)
        return waiting.addBoth(lambda _: None)

    # -- connections ------------------------------------------------------------

    def _newSession(self, session: Any) -> None:
        """
        @param session: a new connection.
        """
        session.codec = _CODEC
        session.listener = RpcConnection(self)

    def connectionOpened(self, connection: RpcConnection) -> None:
        """
        @param connection: a connection whose session opened (L{ICallDispatcher}).
        """
        self.connections.add(connection)
        self._hook("connected", connection.session)

    def connectionClosed(self, connection: RpcConnection) -> None:
        """
        @param connection: a connection whose session closed (L{ICallDispatcher}).
        """
        self.connections.discard(connection)
        self._hook("disconnected", connection.session)

    def _hook(self, name: str, *args: Any) -> None:
        """
        Call one method of every hook that has it; log what they raise.
        """
        for hook in self.hooks:
            method = getattr(hook, name, None)
            if method is not None:
                try:
                    method(*args)
                except Exception:
                    _log.failure("txgetty rpc: hook {hook!r}.{callback} raised", hook=hook, callback=name,
                                 level=LogLevel.error)

    def authenticate(self, connection: RpcConnection, frame: F.Frame) -> Deferred:
        """
        Check a connection's first request with the auth hook.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} that holds the connection's next frames.
        """
        token = frame.head.get(F.AUTH)
        d = maybeDeferred(self.auth, token, connection.session)

        def decided(ok: Any) -> None:
            if ok is True or (ok and not isinstance(ok, Failure)):
                connection.authenticated = True
                self.request(connection, frame)
                return
            self._refuseAuth(connection, frame, token, ok)

        return d.addBoth(decided)

    def _refuseAuth(self, connection: RpcConnection, frame: F.Frame, token: str | None, outcome: Any) -> None:
        """
        Answer C{AuthError} (to a request), log the refusal without the
        token, and close the connection.

        @param outcome: the auth callable's false result, or its L{Failure <twisted.python.failure.Failure>}.
        """
        session = connection.session
        if isinstance(outcome, Failure):
            why = f"the auth callable failed: {outcome.getErrorMessage()}"
            closeWhy = "the auth callable failed"
            if token and token in outcome.getTraceback():
                _log.error("txgetty rpc: the auth callable {hook!r} raised {error} on {session} (its traceback is "
                           "not logged: it holds the auth token); refusing the connection",
                           hook=self.auth, callback="auth", error=outcome.type.__name__, session=session,
                           peer=formatAddress(getattr(session, "remoteAddress", None)))
            else:
                _log.failure("txgetty rpc: the auth callable {hook!r} raised on {session}; refusing the connection",
                             outcome, LogLevel.error, hook=self.auth, callback="auth", session=session,
                             error=outcome.type.__name__, peer=formatAddress(getattr(session, "remoteAddress", None)))
        else:
            if token is None:
                why = ("the first request of the connection carries no auth token (head entry 'auth'): "
                       "send one, e.g. RpcClient(auth=TOKEN) or txgetty call --auth TOKEN")
            else:
                why = "the auth token was refused"
            closeWhy = why
            _log.warn("txgetty rpc: authentication refused on {session}: {why}; closing the connection",
                      session=session, why=why, reason=why,
                      peer=formatAddress(getattr(session, "remoteAddress", None)))
        if frame.type == F.REQUEST:
            connection.respond(F.Frame(F.RESPONSE, frame.requestId, errorHead("AuthError", why),
                                       b"", frame.serializer))
        session.close(f"authentication failed: {closeWhy}")

    # -- calls ------------------------------------------------------------------

    def request(self, connection: RpcConnection, frame: F.Frame) -> None:
        """
        Run one request or oneway call.  The common case (JSON, nothing
        compressed, no hooks, a method that answers at once) takes the
        shortest path; everything else goes through L{_finish}.
        """
        head = frame.head
        # A missing key looks up None: no such service, no such method.
        methods = self._services.get(head.get(F.SERVICE))  # type: ignore[arg-type]
        method = None if methods is None else methods.get(head.get(F.METHOD))  # type: ignore[arg-type]
        isRequest = frame.type == F.REQUEST
        timeoutMs = head.get(F.TIMEOUT_MS)
        deadline = 0.0 if timeoutMs is None else deadlineOf(timeoutMs)
        if deadline is None:
            deadline = parseDeadline(timeoutMs)  # type: ignore[arg-type]
        if (method is None or deadline is None or (self._draining and method is not self._healthCheck)
                or len(connection.calls) >= self.maxInFlight
                or (isRequest and frame.requestId in connection.calls)):
            self._refuse(connection, frame)
            return
        # When the read that delivered the request happened: its arrival
        # (docs/rpc.md, "started"), and one clock read fewer per call.
        started = connection.session.lastActive
        if TRACEPARENT in head:
            trace = serverTrace(head)
        elif OTEL and not (self._tracers.quietFrom <= started < self._tracers.quietUntil):
            trace = self._tracers.trace(head, started)
        else:
            trace = None
        info = self._before(connection, frame, trace, started) if self.hooks or trace is not None else None
        # The arguments of a plain body, read here: this is the path of
        # every call (a function call costs about 1 % of one).
        loads = _QUICK_LOADS.get(frame.serializer) if not frame.compressor else None
        args = None
        if loads is not None and frame.body:
            try:
                args = loads(frame.body)
            except Exception:
                pass  # decodeArguments below words the error
            else:
                if type(args) is not list:
                    args = None
        if args is None:
            try:
                args, kwargs = decodeArguments(frame, connection.maxBody + F.HEADER_SIZE)
            except FrameError:
                self._count(frame, self._finish(connection, frame, info, Failure(), byCaller=True), started)
                return
        else:
            kwargs = NO_KWARGS
        token = CURRENT_CALL.set((frame, connection.session, started, trace))
        if trace is not None:
            trace.attach()
        try:
            if method.blocking:
                result: Any = self._blocking(method, args, kwargs)
            elif kwargs:
                result = method.function(*args, **kwargs)
            else:
                result = method.function(*args)
            if type(result) is CoroutineType:
                # Started inside the call's context: currentCall() works
                # across its awaits.
                result = ensureDeferred(result)
        except Exception as e:
            self._count(frame, self._finish(connection, frame, info, Failure(), _refusedArguments(e)), started)
            return
        finally:
            if trace is not None:
                trace.detach()
            CURRENT_CALL.reset(token)
        if type(result) not in _PLAIN_RESULTS and isinstance(result, Deferred):
            self._later(connection, frame, info, result, deadline, started)
        elif info is None and isRequest and loads is not None and self._quickAnswer(connection, frame, result):
            if self.callStats.watched:
                # Counted when the read is done (countAnswered): its answers
                # leave together, with the read's batched writes.
                # (A read holds at most maxPacketsPerTurn frames, or what
                # one read brings: the list stays short.)
                answered = connection.answered
                if not answered:
                    connection.answeredSince = started
                answered.append(method)
        else:
            self._count(frame, self._finish(connection, frame, info, result), started)

    def _count(self, frame: F.Frame, outcome: str, started: float) -> None:
        """
        Count a finished call of a known method in L{callStats}.

        @param outcome: how it ended (C{"ok"} or an error type).
        @param started: when it started (reactor seconds).
        """
        if self.callStats.watched:
            head = frame.head
            self.callStats.record(head[F.SERVICE], head[F.METHOD], outcome, self.reactor.seconds() - started)

    def countAnswered(self, connection: RpcConnection) -> None:
        """
        Count the calls a connection answered at once during its last read
        (L{ICallDispatcher}), each with the time from the read to now: their
        answers were written together, at the end of the read.

        @param connection: the connection.
        """
        methods, connection.answered = connection.answered, []
        if not methods:
            return
        elapsed = self.reactor.seconds() - connection.answeredSince
        bucket = bisect_left(LATENCY_BOUNDS, elapsed)
        # The calls of a read are mostly of one method: count runs of one.
        run, count = methods[0], 0
        for method in methods:
            if method is run:
                count += 1
            else:
                self._countOk(run, count, bucket, elapsed)
                run, count = method, 1
        self._countOk(run, count, bucket, elapsed)

    def _countOk(self, method: Method, count: int, bucket: int, elapsed: float) -> None:
        """
        Count C{count} calls of a method that took C{elapsed} seconds each.

        @param bucket: the latency bucket of C{elapsed}.
        """
        histogram = self._okCalls.get(method.qualifiedName)
        if histogram is None:
            service, _, name = method.qualifiedName.partition(".")
            histogram = self._okCalls[method.qualifiedName] = self.callStats.histogram(service, name, "ok")
        histogram.counts[bucket] += count
        histogram.sum += elapsed * count

    def _quickAnswer(self, connection: RpcConnection, frame: F.Frame, result: Any) -> bool:
        """
        Answer a plain (uncompressed JSON or msgpack) request at once when
        no compression applies and the response fits the connection.

        @return: whether it was answered (else L{_finish} must).
        """
        try:
            body = _QUICK_DUMPS[frame.serializer](result)
        except Exception:
            return False
        size = len(body)
        if size > connection.maxBody or (
                size > self.compressThreshold and (self.compressor or F.ACCEPT_COMPRESSOR in frame.head)):
            return False
        self.calls += 1
        try:
            connection.session.writePkg(F.responseBytes(frame.requestId, body, frame.serializer, NONE))
        except SessionClosedError:
            pass  # closed while the call ran: nobody to answer (as respond)
        return True

    def _refuse(self, connection: RpcConnection, frame: F.Frame) -> None:
        """
        Answer (or, for a oneway, count) a call that cannot run.
        """
        error = self._refusal(connection, frame)
        service, method = frame.head.get(F.SERVICE), frame.head.get(F.METHOD)
        known = isinstance(service, str) and isinstance(method, str) and self.registry.lookup(service, method)
        if not known:
            service = method = OTHER  # not a known method: no label of the caller's choice
        outcome = "busy" if error[F.ERROR_TYPE] == "ServerBusy" else error[F.ERROR_TYPE]
        self.callStats.record(service, method, outcome, 0.0)  # type: ignore[arg-type]
        if OTEL:
            refusedSpan(frame.head, error[F.ERROR_TYPE], error[F.ERROR_MESSAGE], bool(known))
        if frame.type == F.REQUEST:
            self._answer(connection, frame, error)
        else:
            self.errors += 1

    def _before(self, connection: RpcConnection, frame: F.Frame, trace: CallTrace | None,
                started: float) -> CallInfo:
        """
        @param trace: the call's trace context.
        @param started: when the call started (reactor seconds).
        @return: the call's L{CallInfo}, after the C{beforeCall} hooks saw it.
        """
        head = frame.head
        visible = {k: v for k, v in head.items() if k != F.AUTH}
        info = CallInfo(head[F.SERVICE], head[F.METHOD], frame.requestId, connection.session, visible,
                        started, trace)
        self._hook("beforeCall", info)
        return info

    def _after(self, info: CallInfo, outcome: Any) -> None:
        """
        End the call's span and show its outcome to the C{afterCall} hooks.
        """
        if info.trace is not None:
            info.trace.finish(outcome)
        self._hook("afterCall", info, outcome)

    def _refusal(self, connection: RpcConnection, frame: F.Frame) -> dict[str, str]:
        """
        @return: the error head refusing a request that cannot run (see
            L{refusalHead <txgetty.rpc.refusals.refusalHead>}).
        """
        error = refusalHead(self.registry, frame, connection.calls, draining=self._draining,
                            healthCheck=self._healthCheck, maxInFlight=self.maxInFlight)
        if error[F.ERROR_TYPE] == "ServerBusy":
            self.busy += 1
        return error

    def _blocking(self, method: Any, args: list, kwargs: dict) -> Deferred:
        """
        @return: the method's outcome, run in the task pool.
        @raise TypeError: the method does not take these arguments (checked
            here, in the reactor thread, before a thread is taken).
        """
        if self.taskPool is None:
            raise RuntimeError(f"{method.qualifiedName} is marked blocking but the server has no taskPool")
        signature = _signature(method.function)
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{method.qualifiedName}() {e}") from None
        return self.taskPool.run(method.function, *args, **kwargs)

    def _later(self, connection: RpcConnection, frame: F.Frame, info: CallInfo | None, d: Deferred,
               deadline: float, started: float) -> None:
        """
        Track an unfinished call: deadline, cancellation, answer when done.

        @param deadline: seconds until the call's deadline, 0 for none.
        @param started: when it started (reactor seconds).
        """
        call = PendingCall(d, frame, info)
        if frame.type == F.REQUEST:
            key = frame.requestId
        else:
            # Oneways all carry id 0: give each a key of its own (negative).
            connection.onewayKeys += 1
            key = -connection.onewayKeys
        connection.calls[key] = call
        if deadline:
            call.timer = self.reactor.callLater(deadline, self._expired, connection, call)

        def done(outcome: Any) -> None:
            if connection.calls.get(key) is call:
                del connection.calls[key]
            if call.timer is not None and call.timer.active():
                call.timer.cancel()
            if call.cancelled:
                # Cancelled by the caller, its deadline, or the connection's
                # end: nobody waits for an answer, even if the handler
                # swallowed the cancellation and returned something.
                self.cancelled += 1
                self._count(frame, "deadline" if call.expired else "cancelled", started)
                if info is not None:
                    self._after(info, outcome)
                return
            self._count(frame, self._finish(connection, frame, info, outcome), started)

        d.addBoth(done)

    def _expired(self, connection: RpcConnection, call: PendingCall) -> None:
        """
        A call's deadline passed: log it, cancel the call (no answer).
        """
        call.timer = None
        call.expired = True
        _log.info("txgetty rpc: {call} on {session} cancelled: its deadline (timeout-ms {timeoutMs}) passed",
                  timeoutMs=call.frame.head[F.TIMEOUT_MS], reason="deadline",
                  **callFields(connection.session, call.frame, call.info))
        call.cancel()

    def _finish(self, connection: RpcConnection, frame: F.Frame, info: CallInfo | None, outcome: Any,
                byCaller: bool = False) -> str:
        """
        Report a finished call to the hooks, log its failure, count it and
        answer it (requests only).

        @param byCaller: a failure is the caller's doing (undecodable
            arguments, or arguments the method does not take): logged as
            one info line, as a L{ServiceError} is.
        @return: the outcome, for L{callStats}: C{"ok"} or the error's
            type name.
        """
        response = None
        if frame.type == F.REQUEST and not isinstance(outcome, Failure):
            try:
                response = self._response(connection, frame, outcome)
            except (BadResponse, ResponseTooLarge) as e:
                # The method worked; its result cannot go out.
                _log.error("txgetty rpc: {call} on {session}: {error}: {why}", error=type(e).__name__, why=str(e),
                           reason=f"{type(e).__name__}: {e}", **callFields(connection.session, frame, info))
                outcome = Failure()
        elif isinstance(outcome, Failure):
            self._logFailure(connection, frame, info, outcome,
                             byCaller or outcome.check(ServiceError) is not None)
        if info is not None:
            self._after(info, outcome)
        if frame.type != F.REQUEST:
            self.calls += 1
            if isinstance(outcome, Failure):
                self.errors += 1
                return outcome.value.__class__.__name__
            return "ok"
        if response is not None:
            self.calls += 1
            connection.respond(response)
            return "ok"
        value = outcome.value
        self._answer(connection, frame, errorHead(
            type(value).__name__, safe_str(value) or type(value).__name__, errorCode(getattr(value, "code", None)),
        ))
        return type(value).__name__

    def _logFailure(self, connection: RpcConnection, frame: F.Frame, info: CallInfo | None, failure: Failure,
                    expected: bool) -> None:
        """
        Log a failed call once: an expected failure (a L{ServiceError}, the
        caller's mistake) as one info line, any other at error level with
        its traceback.
        """
        why = cutText(failure.getErrorMessage(), 1000)
        fields = dict(error=failure.type.__name__, why=why, reason=f"{failure.type.__name__}: {why}",
                      **callFields(connection.session, frame, info))
        if expected:
            _log.info("txgetty rpc: {call} on {session} raised {error}: {why}", **fields)
        else:
            _log.failure("txgetty rpc: {call} on {session} raised {error}: {why}", failure, LogLevel.error, **fields)

    def _response(self, connection: RpcConnection, frame: F.Frame, value: Any) -> bytes:
        """
        @return: the bytes of the successful response carrying C{value}.
        @raise BadResponse: the value cannot be serialized (or compressed)
            as the request asks.
        @raise ResponseTooLarge: the response would be longer than the
            connection's C{maxMsgLen}.
        """
        try:
            body, used = encodeBody(value, frame.serializer, self._responseCompressor(frame), self.compressThreshold)
        except Exception as e:
            known = SERIALIZERS.get(frame.serializer)
            how = known.name if known is not None else f"serializer {frame.serializer}"
            raise BadResponse(f"the result of {describeCall(frame)} ({type(value).__name__}) cannot be sent as {how}: "
                              f"{type(e).__name__}: {e}") from None
        if len(body) > connection.maxBody:
            limit = connection.maxBody + F.HEADER_SIZE
            raise ResponseTooLarge(
                f"the response to {describeCall(frame)} would be {len(body) + F.HEADER_SIZE} bytes, more than this "
                f"connection's maxMsgLen of {limit}: return less (page through the result), let it be compressed, "
                f"or raise maxMsgLen on both sides (SessionConfig(maxMsgLen=...), twistd --max-msg-len)"
            )
        return F.responseBytes(frame.requestId, body, frame.serializer, used)

    def _responseCompressor(self, frame: F.Frame) -> int:
        """
        @return: the compressor for a response: the request's own, else the
            one its client accepts, else the server's.
        """
        return frame.compressor or acceptedCompressor(frame) or self.compressor

    def _answer(self, connection: RpcConnection, frame: F.Frame, error: dict[str, str]) -> None:
        """
        Send the error response of a request.
        """
        self.calls += 1
        self.errors += 1
        connection.respond(F.Frame(F.RESPONSE, frame.requestId, error, b"", frame.serializer))


def _refusedArguments(error: Exception) -> bool:
    """
    @param error: what running a method raised in L{RpcServer.request}.
    @return: whether it is a C{TypeError} of the call itself, raised before
        the method's code ran (it does not take the arguments sent): the
        caller's mistake, not the method's.
    """
    if type(error) is not TypeError:
        return False
    tb = error.__traceback__
    inner = tb.tb_next if tb is not None else None
    return inner is None or (inner.tb_next is None and inner.tb_frame.f_code is _BLOCKING_CODE)


@lru_cache(maxsize=1024)
def _signature(function: Any) -> inspect.Signature | None:
    """
    @param function: a blocking method.
    @return: its signature, or C{None} if it has none to check.
    """
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


# The code object of our own class's method (its frame marks a TypeError raised
# before a blocking method ran); a read of this module's class, not a reach-in.
_BLOCKING_CODE = RpcServer._blocking.__code__


_CODEC = F.RpcCodec()
