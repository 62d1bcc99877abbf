"""
The RPC server: named services on a txgetty server, answered with frames of
L{txgetty.rpc.frame}.

A call runs in the reactor thread (plain, L{Deferred <twisted.internet.defer.Deferred>} or C{async def}
methods) or, for methods marked blocking, in the task pool.  What a method
raises becomes an error response; the connection stays open.  A connection
has at most C{maxInFlight} unfinished calls (more get an immediate
C{ServerBusy} error).  A caller's deadline (C{timeout-ms}) cancels the call
when it passes, and no late response is sent.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import replace
from types import CoroutineType
from typing import Any, Iterable, Sequence

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..config import SessionConfig
from ..errors import ConfigError
from ..listener import EventListener
from ..server import Server
from . import frame as F
from .errors import FrameError
from .registry import ServiceRegistry
from .serializers import (
    COMPRESSORS,
    DEFAULT_COMPRESS_THRESHOLD,
    DEFAULT_DECOMPRESS_LIMIT,
    JSON,
    MSGPACK,
    NONE,
    RAW,
    SERIALIZERS,
    compressor,
    serializer,
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
    """

    __slots__ = ("service", "method", "requestId", "session", "head", "started")

    def __init__(self, service: str, method: str, requestId: int, session: Any, head: dict, started: float) -> None:
        self.service, self.method, self.requestId = service, method, requestId
        self.session, self.head, self.started = session, head, started


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


#: Error messages are cut to this many characters (a head entry holds at
#: most 65535 bytes).
_MAX_ERROR_MESSAGE = 4096


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
        frame, session, started = _current.get()
    except LookupError:
        raise RuntimeError("currentCall() is only valid while an RPC method runs") from None
    head = frame.head
    visible = {k: v for k, v in head.items() if k != F.AUTH}
    return CallInfo(head.get(F.SERVICE, ""), head.get(F.METHOD, ""), frame.requestId, session, visible, started)


def errorHead(type: str, message: str, code: Any = None) -> dict[str, str]:
    """
    @param type: the error type's name.
    @param message: the message.
    @param code: an optional code.
    @return: the head map of an error response.
    """
    if len(message) > _MAX_ERROR_MESSAGE:
        message = message[:_MAX_ERROR_MESSAGE] + f"... ({len(message)} characters, cut)"
    head = {F.STATUS: "error", F.ERROR_TYPE: type[:_MAX_ERROR_MESSAGE], F.ERROR_MESSAGE: message}
    if code is not None:
        head[F.ERROR_CODE] = str(code)[:_MAX_ERROR_MESSAGE]
    return head


def decodeArguments(frame: F.Frame, limit: int = DEFAULT_DECOMPRESS_LIMIT) -> tuple[list, dict]:
    """
    @param frame: a request.
    @param limit: the largest decompressed body accepted.
    @return: its positional and keyword arguments.
    @raise FrameError: the body cannot be decoded or has the wrong shape.
    """
    data = frame.body
    try:
        if frame.compressor and data:
            data = compressor(frame.compressor).decompress(data, limit)
        if frame.serializer == RAW:
            return [data], _NO_KWARGS
        if not data:
            return [], {}
        value = (SERIALIZERS.get(frame.serializer) or serializer(frame.serializer)).loads(data)
    except FrameError:
        raise
    except Exception as e:
        raise FrameError(f"cannot decode the request body ({type(e).__name__}: {e})") from None
    if type(value) is list:
        return value, _NO_KWARGS
    if isinstance(value, dict) and set(value) <= {"args", "kwargs"}:
        args, kwargs = value.get("args", []), value.get("kwargs", {})
        if isinstance(args, list) and isinstance(kwargs, dict):
            return args, kwargs
    raise FrameError('the request body must be a list of arguments or {"args": [...], "kwargs": {...}}')


_NO_KWARGS: dict[str, Any] = {}


#: Serializers whose uncompressed requests take the short path of
#: L{RpcServer._request} (msgpack only when its extra is installed).
_QUICK = frozenset(code for code in (JSON, MSGPACK) if code in SERIALIZERS)

#: Result types that are surely not a L{Deferred <twisted.internet.defer.Deferred>}: checked before the
#: (slower, ABC-based) isinstance test.
_PLAIN_RESULTS = frozenset({str, bytes, int, float, bool, type(None), list, dict, tuple})


def _fastArguments(frame: F.Frame) -> list | None:
    """
    @param frame: an uncompressed JSON or msgpack request.
    @return: its arguments if the body is a plain list, else C{None} (then
        L{decodeArguments} decides, and words any error).
    """
    if not frame.body:
        return None
    try:
        value = SERIALIZERS[frame.serializer].loads(frame.body)
    except Exception:
        return None
    return value if type(value) is list else None


def encodeBody(value: Any, serializerCode: int, compressorCode: int, threshold: int) -> tuple[bytes, int]:
    """
    @param value: a result to send.
    @param serializerCode: the serializer to use.
    @param compressorCode: the compressor to use above C{threshold}.
    @param threshold: bytes above which the body is compressed.
    @return: the body and the compressor code actually used.
    @raise Exception: the value cannot be serialized.
    """
    body = (SERIALIZERS.get(serializerCode) or serializer(serializerCode)).dumps(value)
    if compressorCode and len(body) > threshold:
        return compressor(compressorCode).compress(body), compressorCode
    return body, NONE


class _Connection(EventListener):
    """
    The listener of one RPC connection: its calls in flight and whether it
    is authenticated.
    """

    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self.calls: dict[int, _Call] = {}
        self.authenticated = server.auth is None
        self.session: Any = None
        self.onewayKeys = 0

    def onOpen(self, session: Any) -> None:
        """
        @param session: the connection's session.
        """
        self.session = session
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
        @param frame: a response to send (a frame, or its encoded bytes), if
            the session is still open.
        """
        if self.session._state.writable:
            self.session.writePkg(frame)


@implementer(IService)
class RpcServer(Service):
    """
    Named services over txgetty's wire frame (an L{IService <twisted.application.service.IService>}).

    @ivar registry: the L{ServiceRegistry}.
    @ivar server: the underlying L{txgetty.server.Server}.
    @ivar calls: calls answered (ok or error).
    @ivar errors: calls answered with an error.
    @ivar busy: calls refused because a connection had C{maxInFlight}.
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
    ) -> None:
        """
        @param endpoints: where to listen (as for L{txgetty.server.Server}).
        @param reactor: the reactor; the global one if C{None}.
        @param config: session settings (C{readIdleTimeout} is set from
            C{idleTimeout}).
        @param tls: TLS files for C{tls:}/C{wss://} listeners.
        @param taskPool: the L{TaskPool <txgetty.taskpool.TaskPool>} for
            methods marked blocking (they fail without one).
        @param maxInFlight: unfinished calls per connection before
            C{ServerBusy} errors.
        @param auth: C{auth(token, session)} returning true (or a Deferred
            of it) to accept a connection's first request; the token is the
            request's C{auth} head entry.  A refusal answers C{AuthError} and
            closes the connection.
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
        @param raiseSynchronously: as for L{txgetty.server.Server}.
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
        self.calls = self.errors = self.busy = 0
        self.started = reactor.seconds()
        self._draining = False
        config = config or SessionConfig()
        if idleTimeout is None:
            idleTimeout = config.readIdleTimeout or DEFAULT_IDLE_TIMEOUT
        config = replace(config, readIdleTimeout=idleTimeout)
        self.server = Server(list(endpoints), self._newSession, reactor=reactor, config=config, tls=tls,
                             raiseSynchronously=raiseSynchronously, name="txgetty rpc")

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
            <txgetty.server.Server.whenListening>}.
        """
        return self.server.whenListening()

    def status(self) -> dict[str, Any]:
        """
        @return: the server's counters (the built-in C{Status.status}).
        """
        return {
            "connections": len(self.connections), "calls": self.calls, "errors": self.errors,
            "busy": self.busy, "inFlight": sum(len(c.calls) for c in self.connections),
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
                    _log.failure("txgetty rpc: hook {hook!r}.{name} raised", hook=hook, name=name)

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
            why = "the auth token was refused" if not isinstance(ok, Failure) else f"the auth hook failed: {ok.getErrorMessage()}"
            if frame.type == F.REQUEST:
                connection.respond(F.Frame(F.RESPONSE, frame.requestId, errorHead("AuthError", why),
                                           b"", frame.serializer))
            connection.session.close(f"authentication failed: {why}")

        return d.addBoth(decided)

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
        if (method is None or self._draining or len(connection.calls) >= self.maxInFlight
                or (isRequest and frame.requestId in connection.calls)):
            self._refuse(connection, frame)
            return
        info = self._before(connection, frame) if self.hooks else None
        plain = frame.serializer in _QUICK and not frame.compressor
        token = _current.set((frame, connection.session, self.reactor.seconds()))
        try:
            args = _fastArguments(frame) if plain else None
            if args is None:
                args, kwargs = decodeArguments(frame, connection.session._maxMsgLen)
            else:
                kwargs = _NO_KWARGS
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
        except Exception:
            self._finish(connection, frame, info, Failure())
            return
        finally:
            _current.reset(token)
        if type(result) not in _PLAIN_RESULTS and isinstance(result, Deferred):
            self._later(connection, frame, info, result)
        elif info is None and isRequest and plain and self._quickAnswer(connection, frame, result):
            return
        else:
            self._finish(connection, frame, info, result)

    def _quickAnswer(self, connection: _Connection, frame: F.Frame, result: Any) -> bool:
        """
        Answer a plain (uncompressed JSON or msgpack) request at once when
        no compression applies.

        @return: whether it was answered (else L{_finish} must).
        """
        try:
            body = SERIALIZERS[frame.serializer].dumps(result)
        except Exception:
            return False
        if len(body) > self.compressThreshold and (self.compressor or F.ACCEPT_COMPRESSOR in frame.head):
            return False
        self.calls += 1
        session = connection.session
        if session._state.writable:
            session.writePkg(F.responseBytes(frame.requestId, body, frame.serializer, NONE))
        return True

    def _refuse(self, connection: _Connection, frame: F.Frame) -> None:
        """
        Answer (or, for a oneway, count) a call that cannot run.
        """
        error = self._refusal(connection, frame)
        if frame.type == F.REQUEST:
            self._answer(connection, frame, None, error)
        else:
            self.calls += 1
            self.errors += 1

    def _before(self, connection: _Connection, frame: F.Frame) -> CallInfo:
        """
        @return: the call's L{CallInfo}, after the C{beforeCall} hooks saw it.
        """
        head = frame.head
        visible = {k: v for k, v in head.items() if k != F.AUTH}
        info = CallInfo(head[F.SERVICE], head[F.METHOD], frame.requestId, connection.session, visible,
                        self.reactor.seconds())
        self._hook("beforeCall", info)
        return info

    def _refusal(self, connection: _Connection, frame: F.Frame) -> dict[str, str]:
        """
        @return: the error head refusing a request that cannot run.
        """
        head = frame.head
        if self._draining:
            return errorHead("ShuttingDown", "the server is shutting down; call another server")
        if len(connection.calls) >= self.maxInFlight:
            self.busy += 1
            return errorHead("ServerBusy", f"{self.maxInFlight} calls of this connection are in flight "
                                           f"(maxInFlight); retry later", "busy")
        if frame.type == F.REQUEST and frame.requestId in connection.calls:
            return errorHead("BadRequest", f"request id {frame.requestId} is already in flight on this connection")
        service, method = head.get(F.SERVICE), head.get(F.METHOD)
        if not service or not method:
            return errorHead("BadRequest", "the request names no service and method (head map entries "
                                           "'service' and 'method')")
        if not self.registry.hasService(service):
            return errorHead("NoSuchService", f"no service named {service!r}; "
                                              f"services: {', '.join(self.registry.names()) or 'none'}")
        return errorHead("NoSuchMethod", f"service {service!r} has no method {method!r}; "
                                         f"methods: {', '.join(self.registry.names()[service])}")

    def _blocking(self, method: Any, args: list, kwargs: dict) -> Deferred:
        """
        @return: the method's outcome, run in the task pool.
        """
        if self.taskPool is None:
            raise RuntimeError(f"{method.qualifiedName} is marked blocking but the server has no taskPool")
        return self.taskPool.run(method.function, *args, **kwargs)

    def _later(self, connection: _Connection, frame: F.Frame, info: CallInfo | None, d: Deferred) -> None:
        """
        Track an unfinished call: deadline, cancellation, answer when done.
        """
        call = _Call(d, frame, info)
        if frame.type == F.REQUEST:
            key = frame.requestId
        else:
            # Oneways all carry id 0: give each a key of its own (negative).
            connection.onewayKeys += 1
            key = -connection.onewayKeys
        connection.calls[key] = call
        deadline = _deadline(frame.head.get(F.TIMEOUT_MS))
        if deadline is not None:
            call.timer = self.reactor.callLater(deadline, call.cancel)

        def done(outcome: Any) -> None:
            if connection.calls.get(key) is call:
                del connection.calls[key]
            if call.timer is not None and call.timer.active():
                call.timer.cancel()
            if call.cancelled:
                # Cancelled by the caller, its deadline, or the connection's
                # end: nobody waits for an answer, even if the handler
                # swallowed the cancellation and returned something.
                if info is not None:
                    self._hook("afterCall", info, outcome)
                return
            self._finish(connection, frame, info, outcome)

        d.addBoth(done)

    def _finish(self, connection: _Connection, frame: F.Frame, info: CallInfo | None, outcome: Any) -> None:
        """
        Report a finished call to the hooks and answer it (requests only).
        """
        if info is not None:
            self._hook("afterCall", info, outcome)
        if isinstance(outcome, Failure):
            head = frame.head
            _log.info("txgetty rpc: {service}.{method} raised {type}: {why}", service=head.get(F.SERVICE),
                      method=head.get(F.METHOD), type=type(outcome.value).__name__,
                      why=outcome.getErrorMessage()[:200])
        if frame.type != F.REQUEST:
            self.calls += 1
            if isinstance(outcome, Failure):
                self.errors += 1
            return
        if isinstance(outcome, Failure):
            value = outcome.value
            code = getattr(value, "code", None)
            self._answer(connection, frame, None, errorHead(
                type(value).__name__, str(value) or type(value).__name__,
                code if isinstance(code, (str, int)) else None,
            ))
        else:
            self._answer(connection, frame, outcome, None)

    def _responseCompressor(self, frame: F.Frame) -> int:
        """
        @return: the compressor for a response: the request's own, else the
            one its client accepts, else the server's.
        """
        return frame.compressor or _acceptedCompressor(frame) or self.compressor

    def _answer(self, connection: _Connection, frame: F.Frame, value: Any, error: dict[str, str] | None) -> None:
        """
        Send the response of a request.
        """
        self.calls += 1
        if error is None:
            try:
                body, used = encodeBody(value, frame.serializer, self._responseCompressor(frame),
                                        self.compressThreshold)
            except Exception as e:
                error = errorHead("BadResponse", f"the result cannot be serialized: {type(e).__name__}: {e}")
            else:
                connection.respond(F.responseBytes(frame.requestId, body, frame.serializer, used))
                return
        self.errors += 1
        connection.respond(F.Frame(F.RESPONSE, frame.requestId, error, b"", frame.serializer))


def _acceptedCompressor(frame: F.Frame) -> int:
    """
    @param frame: a request.
    @return: the compressor its client asked for responses (C{accept-compressor}),
        if it is one this side has, else 0.
    """
    asked = frame.head.get(F.ACCEPT_COMPRESSOR)
    if asked and asked.isascii() and asked.isdigit() and int(asked) in COMPRESSORS:
        return int(asked)
    return NONE


def _deadline(value: str | None) -> float | None:
    """
    @param value: a C{timeout-ms} head entry.
    @return: seconds until the call's deadline, or C{None} for none (absent,
        not a number, or not positive).
    """
    if not value:
        return None
    try:
        milliseconds = float(value)
    except ValueError:
        return None
    return milliseconds / 1000.0 if milliseconds > 0 else None


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
