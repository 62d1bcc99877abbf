"""
The RPC server: named services on a txgetty server, answered with frames of
L{txgetty.rpc.frame}.

A call runs in the reactor thread (plain, L{Deferred <twisted.internet.defer.Deferred>} or C{async def}
methods) or, for methods marked blocking, in the task pool.  What a method
raises becomes an error response; the connection stays open.  A connection
has at most C{maxInFlight} unfinished calls (more get an immediate
C{ServerBusy} error).  A caller's deadline (C{timeout-ms}) cancels the call
when it passes, and no late response is sent, as after a cancel frame.
"""

from __future__ import annotations

import inspect
import re
from contextvars import ContextVar
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
from ..errors import ConfigError
from ..handlers import EventListener
from ..server import Server
from . import frame as F
from .errors import BadResponse, FrameError, ResponseTooLarge, ServiceError
from .body import NO_KWARGS, decodeArguments, encodeBody, fastArguments
from .builtin import Health
from .services import ServiceRegistry
from .tracing import OTEL, TRACEPARENT, CallTrace, parseTraceparent, serverTrace
from ..transports.addresses import formatAddress
from .serializers import (
    COMPRESSORS,
    DEFAULT_COMPRESS_THRESHOLD,
    DEFAULT_DECOMPRESS_LIMIT,
    JSON,
    MSGPACK,
    NONE,
    SERIALIZERS,
    compressor,
)

_log = Logger()
_current: ContextVar[tuple] = ContextVar("txgetty.rpc.currentCall")

DEFAULT_MAX_IN_FLIGHT = 256
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_SHUTDOWN_TIMEOUT = 10.0


class CallInfo:
    """
    What hooks learn about a call.

    @ivar service: the service name.
    @ivar method: the method name.
    @ivar requestId: the request id.
    @ivar session: the txgetty session of the connection.
    @ivar head: the request's head map (metadata, trace id, ...).
    @ivar started: when the call started (clock seconds).
    @ivar trace: the call's trace context, or C{None} (see
        L{txgetty.rpc.tracing}).
    """

    __slots__ = ("service", "method", "requestId", "session", "head", "started", "trace")

    def __init__(self, service: str, method: str, requestId: int, session: Any, head: dict, started: float,
                 trace: CallTrace | None = None) -> None:
        self.service, self.method, self.requestId = service, method, requestId
        self.session, self.head, self.started = session, head, started
        self.trace = trace

    @property
    def traceparent(self) -> str | None:
        """
        The request's W3C C{traceparent}, if it carried a valid one, else
        C{None}.
        """
        return self.trace.traceparent if self.trace is not None else None

    @property
    def tracestate(self) -> str | None:
        """
        The request's C{tracestate}, if it carried one with a valid
        C{traceparent}, else C{None}.
        """
        return self.trace.tracestate if self.trace is not None else None

    @property
    def traceId(self) -> str | None:
        """
        The call's trace id (32 hex digits), or C{None} if it has no trace
        context.
        """
        return self.trace.traceId if self.trace is not None else None

    @property
    def parentId(self) -> str | None:
        """
        The caller's span id (the C{traceparent}'s parent id), or C{None}.
        """
        return self.trace.parentId if self.trace is not None else None

    @property
    def spanId(self) -> str | None:
        """
        The call's own span id (16 hex digits; the parent id of the calls
        its method makes), or C{None} if it has no trace context.
        """
        return self.trace.spanId if self.trace is not None else None


class _Call:
    """
    An unfinished call of a connection: its Deferred and deadline timer.

    @ivar cancelled: this side cancelled it (deadline, cancel frame, lost
        connection): no answer is due.
    """

    __slots__ = ("deferred", "timer", "frame", "info", "cancelled")

    def __init__(self, deferred: Deferred, frame: F.Frame, info: CallInfo | None) -> None:
        self.deferred, self.frame, self.info = deferred, frame, info
        self.timer: Any = None
        self.cancelled = False

    def cancel(self) -> None:
        """
        Stop the call; nobody waits for its answer any more.
        """
        self.cancelled = True
        self.deferred.cancel()


#: Each of C{error-type}, C{error-message} and C{error-code} is at most this
#: many characters, a cut suffix included (so that an error response always
#: fits in the head map: 4096 characters are at most 16384 UTF-8 bytes).
MAX_ERROR_TEXT = 4096


def currentCall() -> CallInfo:
    """
    What the RPC method running now was called with: service, method,
    request id, session, head map (metadata, trace id; not the auth token)
    and start time.  Valid inside a method, across the awaits of an
    C{async def} method, and in a blocking method's worker thread.

    @return: the call's L{CallInfo}.
    @raise RuntimeError: no RPC method is running in this context.
    """
    try:
        frame, session, started, trace = _current.get()
    except LookupError:
        raise RuntimeError("currentCall() is only valid while an RPC method runs") from None
    head = frame.head
    visible = {k: v for k, v in head.items() if k != F.AUTH}
    return CallInfo(head.get(F.SERVICE, ""), head.get(F.METHOD, ""), frame.requestId, session, visible, started,
                    trace)


def runningTrace() -> CallTrace | None:
    """
    @return: the trace context of the RPC call whose method runs now, or
        C{None} (no method runs, or its call has no trace context).
    """
    try:
        return _current.get()[3]
    except LookupError:
        return None


def cutText(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """
    @param text: an error text.
    @param limit: the most characters allowed.
    @return: the text if it has at most C{limit} characters; else its start
        followed by C{"... (N characters, cut)"} (N: the length of C{text}),
        C{limit} characters in all.
    """
    if len(text) <= limit:
        return text
    suffix = f"... ({len(text)} characters, cut)"
    return text[:limit - len(suffix)] + suffix


def errorCode(code: Any) -> str | None:
    """
    @param code: an exception's C{code} attribute.
    @return: its C{error-code} text: a non-empty C{str} as it is, an C{int}
        (not a C{bool}) in decimal; C{None} (no entry) for anything else.
    """
    if isinstance(code, str):
        return str(code) or None
    if isinstance(code, int) and not isinstance(code, bool):
        try:
            return str(int(code))
        except ValueError:  # more digits than int-to-str conversion allows
            return None
    return None


def errorHead(type: str, message: str, code: str | None = None) -> dict[str, str]:
    """
    @param type: the error type's name.
    @param message: the message.
    @param code: an optional code, as text (see L{errorCode}).
    @return: the head map of an error response, each text cut by
        L{cutText}.
    """
    head = {F.STATUS: "error", F.ERROR_TYPE: cutText(type), F.ERROR_MESSAGE: cutText(message)}
    if code is not None:
        head[F.ERROR_CODE] = cutText(code)
    return head


#: Serializers whose uncompressed requests take the short path of
#: L{RpcServer._request} (msgpack only when its extra is installed).
_QUICK = frozenset(code for code in (JSON, MSGPACK) if code in SERIALIZERS)

#: Result types that are surely not a L{Deferred <twisted.internet.defer.Deferred>}: checked before the
#: (slower, ABC-based) isinstance test.
_PLAIN_RESULTS = frozenset({str, bytes, int, float, bool, type(None), list, dict, tuple})


class _Connection(EventListener):
    """
    The listener of one RPC connection: its calls in flight and whether it
    is authenticated.

    @ivar maxBody: the longest response body this connection sends: its
        session's C{maxMsgLen} less the 16 header bytes (a longer result is
        answered with C{ResponseTooLarge}).
    """

    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self.calls: dict[int, _Call] = {}
        self.authenticated = server.auth is None
        self.session: Any = None
        self.onewayKeys = 0
        self.maxBody = DEFAULT_DECOMPRESS_LIMIT - F.HEADER_SIZE

    def onOpen(self, session: Any) -> None:
        """
        @param session: the connection's session.
        """
        self.session = session
        self.maxBody = session.maxMsgLen - F.HEADER_SIZE
        self.server._connected(self)

    def onMessage(self, session: Any, frame: F.Frame) -> Any:
        """
        @param session: the session.
        @param frame: a frame from the client.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} while the first request is authenticated
            (the next frames wait for it), else C{None}.
        """
        kind = frame.type
        if kind == F.REQUEST or kind == F.ONEWAY:
            if self.authenticated:
                self.server._request(self, frame)
                return None
            return self.server._authenticate(self, frame)
        if kind == F.HEARTBEAT_REQUEST:
            session.writePkg(F.Frame(F.HEARTBEAT_RESPONSE, frame.requestId, None, b"", frame.serializer))
        elif kind == F.CANCEL:
            call = self.calls.get(frame.requestId)
            if call is not None:
                call.cancel()
        return None

    def onClose(self, session: Any) -> None:
        """
        Cancel what is still running: nobody can get its answer.

        @param session: the session.
        """
        calls, self.calls = self.calls, {}
        for call in calls.values():
            call.cancel()
        self.server._disconnected(self)

    def respond(self, frame: F.Frame | bytes) -> None:
        """
        @param frame: a response to send (a L{Frame} or its bytes), if the
            session is still open.
        """
        if self.session.acceptsWrites:
            self.session.writePkg(frame)


@implementer(IService)
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
        self._services = self.registry._services
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
        self.connections: set[_Connection] = set()
        self.calls = self.errors = self.busy = self.cancelled = 0
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
        Stop accepting connections and calls, let the calls in flight finish
        for up to C{shutdownTimeout} seconds, then close every connection.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once everything is closed.
        """
        Service.stopService(self)
        self._draining = True
        d = self.server.stopListening()
        d.addCallback(lambda _: self._drained())
        d.addCallback(lambda _: self.server.stopService())
        return d

    def _drained(self) -> Deferred:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing when no call is in flight, or after
            C{shutdownTimeout}.
        """
        pending = [call.deferred for c in self.connections for call in c.calls.values()]
        if not pending:
            return succeed(None)
        waiting = DeferredList([_quiet(d) for d in pending], consumeErrors=True)
        waiting.addTimeout(self.shutdownTimeout, self.reactor, onTimeoutCancel=lambda *_: None)
        return waiting.addBoth(lambda _: None)

    # -- connections ------------------------------------------------------------

    def _newSession(self, session: Any) -> None:
        """
        @param session: a new connection.
        """
        session.codec = _CODEC
        session.listener = _Connection(self)

    def _connected(self, connection: _Connection) -> None:
        self.connections.add(connection)
        self._hook("connected", connection.session)

    def _disconnected(self, connection: _Connection) -> None:
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
                    _log.failure("txgetty rpc: hook {hook!r}.{name} raised", hook=hook, name=name,
                                 level=LogLevel.error)

    def _authenticate(self, connection: _Connection, frame: F.Frame) -> Deferred:
        """
        Check a connection's first request with the auth hook.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} that holds the connection's next frames.
        """
        token = frame.head.get(F.AUTH)
        d = maybeDeferred(self.auth, token, connection.session)

        def decided(ok: Any) -> None:
            if ok is True or (ok and not isinstance(ok, Failure)):
                connection.authenticated = True
                self._request(connection, frame)
                return
            self._refuseAuth(connection, frame, token, ok)

        return d.addBoth(decided)

    def _refuseAuth(self, connection: _Connection, frame: F.Frame, token: str | None, outcome: Any) -> None:
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
                _log.error("txgetty rpc: the auth callable {auth!r} raised {type} on {session} (its traceback is "
                           "not logged: it holds the auth token); refusing the connection",
                           auth=self.auth, type=outcome.type.__name__, session=session)
            else:
                _log.failure("txgetty rpc: the auth callable {auth!r} raised on {session}; refusing the connection",
                             outcome, LogLevel.error, auth=self.auth, session=session)
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

    def _request(self, connection: _Connection, frame: F.Frame) -> None:
        """
        Run one request or oneway call.  The common case (JSON, nothing
        compressed, no hooks, a method that answers at once) takes the
        shortest path; everything else goes through L{_finish}.
        """
        head = frame.head
        # A missing key looks up None: no such service, no such method.
        methods = self._services.get(head.get(F.SERVICE))  # type: ignore[arg-type]
        method = methods.get(head.get(F.METHOD)) if methods is not None else None  # type: ignore[arg-type]
        isRequest = frame.type == F.REQUEST
        timeoutMs = head.get(_TIMEOUT_KEY)
        deadline = 0.0 if timeoutMs is None else _deadlineOf(timeoutMs)
        if deadline is None:
            deadline = _parseDeadline(timeoutMs)  # type: ignore[arg-type]
        if (method is None or deadline is None or (self._draining and method is not self._healthCheck)
                or len(connection.calls) >= self.maxInFlight
                or (isRequest and frame.requestId in connection.calls)):
            self._refuse(connection, frame)
            return
        trace = serverTrace(head) if OTEL or TRACEPARENT in head else None
        info = self._before(connection, frame, trace) if self.hooks or trace is not None else None
        plain = frame.serializer in _QUICK and not frame.compressor
        args = fastArguments(frame) if plain else None
        if args is None:
            try:
                args, kwargs = decodeArguments(frame, connection.maxBody + F.HEADER_SIZE)
            except FrameError:
                self._finish(connection, frame, info, Failure(), byCaller=True)
                return
        else:
            kwargs = NO_KWARGS
        token = _current.set((frame, connection.session, self.reactor.seconds(), trace))
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
            self._finish(connection, frame, info, Failure(), _refusedArguments(e))
            return
        finally:
            if trace is not None:
                trace.detach()
            _current.reset(token)
        if type(result) not in _PLAIN_RESULTS and isinstance(result, Deferred):
            self._later(connection, frame, info, result, deadline)
        elif info is None and isRequest and plain and self._quickAnswer(connection, frame, result):
            return
        else:
            self._finish(connection, frame, info, result)

    def _quickAnswer(self, connection: _Connection, frame: F.Frame, result: Any) -> bool:
        """
        Answer a plain (uncompressed JSON or msgpack) request at once when
        no compression applies and the response fits the connection.

        @return: whether it was answered (else L{_finish} must).
        """
        try:
            body = SERIALIZERS[frame.serializer].dumps(result)
        except Exception:
            return False
        size = len(body)
        if size > connection.maxBody or (
                size > self.compressThreshold and (self.compressor or F.ACCEPT_COMPRESSOR in frame.head)):
            return False
        self.calls += 1
        session = connection.session
        if session.acceptsWrites:
            session.writePkg(F.responseBytes(frame.requestId, body, frame.serializer, NONE))
        return True

    def _refuse(self, connection: _Connection, frame: F.Frame) -> None:
        """
        Answer (or, for a oneway, count) a call that cannot run.
        """
        error = self._refusal(connection, frame)
        if frame.type == F.REQUEST:
            self._answer(connection, frame, error)
        else:
            self.errors += 1

    def _before(self, connection: _Connection, frame: F.Frame, trace: CallTrace | None) -> CallInfo:
        """
        @param trace: the call's trace context.
        @return: the call's L{CallInfo}, after the C{beforeCall} hooks saw it.
        """
        head = frame.head
        visible = {k: v for k, v in head.items() if k != F.AUTH}
        info = CallInfo(head[F.SERVICE], head[F.METHOD], frame.requestId, connection.session, visible,
                        self.reactor.seconds(), trace)
        self._hook("beforeCall", info)
        return info

    def _after(self, info: CallInfo, outcome: Any) -> None:
        """
        End the call's span and show its outcome to the C{afterCall} hooks.
        """
        if info.trace is not None:
            info.trace.finish(outcome)
        self._hook("afterCall", info, outcome)

    def _refusal(self, connection: _Connection, frame: F.Frame) -> dict[str, str]:
        """
        @return: the error head refusing a request that cannot run, by the
            first reason that applies, in the order of docs/rpc-protocol.md
            (I{Refusals}).
        """
        head = frame.head
        asked = self.registry.lookup(head.get(F.SERVICE, ""), head.get(F.METHOD, ""))
        if self._draining and asked is not self._healthCheck:
            return errorHead("ShuttingDown", "the server is shutting down; call another server")
        if len(connection.calls) >= self.maxInFlight:
            self.busy += 1
            return errorHead("ServerBusy", f"{self.maxInFlight} calls of this connection are in flight "
                                           f"(maxInFlight); retry later", "busy")
        if frame.type == F.REQUEST and frame.requestId in connection.calls:
            return errorHead("BadRequest", f"request id {frame.requestId} is already in flight on this connection; "
                                           f"give each request in flight an id of its own")
        service, method = head.get(F.SERVICE), head.get(F.METHOD)
        for key, value in ((F.SERVICE, service), (F.METHOD, method)):
            if not value:
                state = "is empty" if value == "" else "is missing"
                return errorHead("BadRequest", f"the request's head entry {key!r} {state}: name the service "
                                               f"and the method to call ('service' and 'method')")
        if not self.registry.hasService(service):  # type: ignore[arg-type]
            demo = _DEMO_HINT if service in _DEMO_SERVICES else ""
            return errorHead("NoSuchService", f"no service named {service!r}; "
                                              f"services: {', '.join(self.registry.names()) or 'none'}{demo}")
        if self.registry.lookup(service, method) is None:  # type: ignore[arg-type]
            return errorHead("NoSuchMethod", f"service {service!r} has no method {method!r}; "
                                             f"methods: {', '.join(self.registry.names()[service])}")  # type: ignore[index]
        return errorHead("BadRequest", f"the request's timeout-ms {cutText(head[F.TIMEOUT_MS], 40)!r} is not "
                                       f"a deadline: send 1 to 10 ASCII digits of milliseconds, optionally with "
                                       f"a '.' and 1 to 3 more digits (e.g. '30000'), '0' for none, or no "
                                       f"timeout-ms entry")

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

    def _later(self, connection: _Connection, frame: F.Frame, info: CallInfo | None, d: Deferred,
               deadline: float) -> None:
        """
        Track an unfinished call: deadline, cancellation, answer when done.

        @param deadline: seconds until the call's deadline, 0 for none.
        """
        call = _Call(d, frame, info)
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
                if info is not None:
                    self._after(info, outcome)
                return
            self._finish(connection, frame, info, outcome)

        d.addBoth(done)

    def _expired(self, connection: _Connection, call: _Call) -> None:
        """
        A call's deadline passed: log it, cancel the call (no answer).
        """
        call.timer = None
        _log.info("txgetty rpc: {call} on {session} cancelled: its deadline (timeout-ms {timeout}) passed",
                  timeout=call.frame.head[F.TIMEOUT_MS], reason="deadline",
                  **callFields(connection.session, call.frame, call.info))
        call.cancel()

    def _finish(self, connection: _Connection, frame: F.Frame, info: CallInfo | None, outcome: Any,
                byCaller: bool = False) -> None:
        """
        Report a finished call to the hooks, log its failure, count it and
        answer it (requests only).

        @param byCaller: a failure is the caller's doing (undecodable
            arguments, or arguments the method does not take): logged as
            one info line, as a L{ServiceError} is.
        """
        response = None
        if frame.type == F.REQUEST and not isinstance(outcome, Failure):
            try:
                response = self._response(connection, frame, outcome)
            except (BadResponse, ResponseTooLarge) as e:
                # The method worked; its result cannot go out.
                _log.error("txgetty rpc: {call} on {session}: {type}: {why}", type=type(e).__name__, why=e,
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
            return
        if response is not None:
            self.calls += 1
            connection.respond(response)
            return
        value = outcome.value
        self._answer(connection, frame, errorHead(
            type(value).__name__, safe_str(value) or type(value).__name__, errorCode(getattr(value, "code", None)),
        ))

    def _logFailure(self, connection: _Connection, frame: F.Frame, info: CallInfo | None, failure: Failure,
                    expected: bool) -> None:
        """
        Log a failed call once: an expected failure (a L{ServiceError}, the
        caller's mistake) as one info line, any other at error level with
        its traceback.
        """
        why = cutText(failure.getErrorMessage(), 1000)
        fields = dict(type=failure.type.__name__, why=why, reason=f"{failure.type.__name__}: {why}",
                      **callFields(connection.session, frame, info))
        if expected:
            _log.info("txgetty rpc: {call} on {session} raised {type}: {why}", **fields)
        else:
            _log.failure("txgetty rpc: {call} on {session} raised {type}: {why}", failure, LogLevel.error, **fields)

    def _response(self, connection: _Connection, frame: F.Frame, value: Any) -> bytes:
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
            raise BadResponse(f"the result of {_describe(frame)} ({type(value).__name__}) cannot be sent as {how}: "
                              f"{type(e).__name__}: {e}") from None
        if len(body) > connection.maxBody:
            limit = connection.maxBody + F.HEADER_SIZE
            raise ResponseTooLarge(
                f"the response to {_describe(frame)} would be {len(body) + F.HEADER_SIZE} bytes, more than this "
                f"connection's maxMsgLen of {limit}: return less (page through the result), let it be compressed, "
                f"or raise maxMsgLen on both sides (SessionConfig(maxMsgLen=...), twistd --max-msg-len)"
            )
        return F.responseBytes(frame.requestId, body, frame.serializer, used)

    def _responseCompressor(self, frame: F.Frame) -> int:
        """
        @return: the compressor for a response: the request's own, else the
            one its client accepts, else the server's.
        """
        return frame.compressor or _acceptedCompressor(frame) or self.compressor

    def _answer(self, connection: _Connection, frame: F.Frame, error: dict[str, str]) -> None:
        """
        Send the error response of a request.
        """
        self.calls += 1
        self.errors += 1
        connection.respond(F.Frame(F.RESPONSE, frame.requestId, error, b"", frame.serializer))


#: The demo services, and what a NoSuchService for one of them adds.
_DEMO_SERVICES = frozenset({"Echo", "Ping", "Status"})
_DEMO_HINT = ("; Echo, Ping and Status are the demo services: twistd txgetty serves them when given no --app, "
              "--service or TLS listener, or with --rpc-demo; an RpcServer after registerBuiltins(server)")


def callFields(session: Any, frame: F.Frame, info: CallInfo | None) -> dict[str, Any]:
    """
    The stable fields of a call's log events (docs/observability.md,
    "Logs").

    @param session: the connection's session.
    @param frame: the request or oneway.
    @param info: its L{CallInfo}, if it has one (its trace).
    @return: C{call} (C{"Service.method request #ID"}), C{session},
        C{peer}, C{service}, C{method}, C{requestId} and C{traceId} (the
        call's trace id, or C{None}).
    """
    head = frame.head
    trace = info.trace if info is not None else None
    if trace is not None:
        traceId: str | None = trace.traceId
    else:
        parent = parseTraceparent(head.get(TRACEPARENT))
        traceId = parent.traceId if parent is not None else None
    return dict(call=_describe(frame), session=session, peer=formatAddress(getattr(session, "remoteAddress", None)),
                service=head.get(F.SERVICE), method=head.get(F.METHOD),
                requestId=frame.requestId if frame.type == F.REQUEST else None, traceId=traceId)


def _describe(frame: F.Frame) -> str:
    """
    @param frame: a request or oneway that names a registered method.
    @return: C{"Service.method request #ID"} or C{"Service.method oneway"},
        for log lines.
    """
    head = frame.head
    kind = f"request #{frame.requestId}" if frame.type == F.REQUEST else "oneway"
    return f"{head.get(F.SERVICE)}.{head.get(F.METHOD)} {kind}"


def _refusedArguments(error: Exception) -> bool:
    """
    @param error: what running a method raised in L{RpcServer._request}.
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


_BLOCKING_CODE = RpcServer._blocking.__code__


def _acceptedCompressor(frame: F.Frame) -> int:
    """
    @param frame: a request.
    @return: the compressor its client asked for responses
        (C{accept-compressor}: 1 to 3 ASCII digits, a code this side has),
        else 0: absent, malformed and unknown values are ignored.
    """
    asked = frame.head.get(F.ACCEPT_COMPRESSOR)
    if asked and len(asked) <= 3 and asked.isascii() and asked.isdigit() and int(asked) in COMPRESSORS:
        return int(asked)
    return NONE


#: The grammar of C{timeout-ms}: 1 to 10 ASCII digits, optionally a "." and
#: 1 to 3 more.
_TIMEOUT_MS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,3})?")

#: C{timeout-ms} values seen, and their deadlines in seconds (0.0: none).
_DEADLINES: dict[str, float] = {}
_deadlineOf = _DEADLINES.get
_TIMEOUT_KEY = F.TIMEOUT_MS


def _parseDeadline(value: str) -> float | None:
    """
    @param value: a C{timeout-ms} head entry.
    @return: seconds until the call's deadline, 0.0 for none (a value of
        zero), or C{None} if the value is not of the grammar (the call is
        refused with C{BadRequest}).
    """
    if _TIMEOUT_MS.fullmatch(value) is None:
        return None
    seconds = float(value) / 1000.0
    if len(_DEADLINES) >= 4096:
        _DEADLINES.clear()
    _DEADLINES[value] = seconds
    return seconds


def compressorFor(key: str | int) -> int:
    """
    @param key: a compressor name or code.
    @return: its code.
    """
    return compressor(key).code


def _quiet(d: Deferred) -> Deferred:
    """
    @param d: a call's Deferred.
    @return: a Deferred firing when it does, without taking its result.
    """
    waiter: Deferred = Deferred()

    def fired(result: Any) -> Any:
        if not waiter.called:
            waiter.callback(None)
        return result

    d.addBoth(fired)
    return waiter


_CODEC = F.RpcCodec()
