"""
The RPC server's dispatch of calls: a connection's requests and oneways
looked up in the L{ServiceRegistry}, refused (busy, shutting down, bad
request), run (in the reactor thread or, for blocking methods, the task
pool), tracked until their deadline (C{timeout-ms}) or cancel, reported to
the hooks, logged once when they fail, and answered.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from types import CoroutineType
from typing import Any, Iterable

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.python.reflect import safe_str
from zope.interface import implementer

from ..interfaces import ICallDispatcher
from . import frame as F
from .body import NO_KWARGS, decodeArguments, encodeBody, fastArguments
from .calls import (
    CURRENT_CALL,
    CallInfo,
    PendingCall,
    acceptedCompressor,
    cutText,
    deadlineOf,
    describeCall,
    errorCode,
    errorHead,
    parseDeadline,
)
from .connection import RpcConnection
from .errors import BadResponse, FrameError, ResponseTooLarge, ServiceError
from .serializers import JSON, MSGPACK, NONE, SERIALIZERS
from .services import ServiceRegistry

# The namespace of the RPC server's log lines (documented in docs/rpc.md).
_log = Logger(namespace="txgetty.rpc.server")


#: Serializers whose uncompressed requests take the short path of
#: L{CallDispatcher.request} (msgpack only when its extra is installed).
_QUICK = frozenset(code for code in (JSON, MSGPACK) if code in SERIALIZERS)

#: Result types that are surely not a L{Deferred <twisted.internet.defer.Deferred>}: checked before the
#: (slower, ABC-based) isinstance test.
_PLAIN_RESULTS = frozenset({str, bytes, int, float, bool, type(None), list, dict, tuple})


#: The demo services, and what a NoSuchService for one of them adds.
_DEMO_SERVICES = frozenset({"Echo", "Ping", "Status"})
_DEMO_HINT = ("; Echo, Ping and Status are the demo services: twistd txgetty serves them when given no --app, "
              "--service or TLS listener, or with --rpc-demo; an RpcServer after registerBuiltins(server)")


@implementer(ICallDispatcher)
class CallDispatcher:
    """
    Runs the calls of RPC connections against a registry of services (the
    base of L{RpcServer <txgetty.rpc.server.RpcServer>}, which adds the
    listening and the shutdown).

    @ivar reactor: the clock of deadlines and start times.
    @ivar registry: the L{ServiceRegistry}.
    @ivar maxInFlight: unfinished calls per connection before C{ServerBusy}.
    @ivar auth: the auth callable, or C{None}.
    @ivar hooks: the hooks (C{connected}, C{disconnected}, C{beforeCall},
        C{afterCall}).
    @ivar compressor: the compressor code of responses whose request names
        none.
    @ivar compressThreshold: bytes above which a response body is compressed.
    @ivar taskPool: the task pool of blocking methods, or C{None}.
    @ivar connections: the open connections.
    @ivar calls: requests answered and oneways run (see L{RpcServer
        <txgetty.rpc.server.RpcServer>}).
    @ivar errors: error answers and failed or refused oneways.
    @ivar busy: calls refused with C{ServerBusy}.
    @ivar cancelled: calls cancelled without an answer.
    """

    def __init__(self, reactor: Any, *, maxInFlight: int, auth: Any, hooks: Iterable[Any], compressor: int,
                 compressThreshold: int, taskPool: Any) -> None:
        """
        @param reactor: the clock.
        @param maxInFlight: unfinished calls per connection before
            C{ServerBusy}.
        @param auth: the auth callable, or C{None}.
        @param hooks: the initial hooks.
        @param compressor: the default response compressor's code.
        @param compressThreshold: bytes above which a response is compressed.
        @param taskPool: the task pool of blocking methods, or C{None}.
        """
        self.reactor = reactor
        self.registry = ServiceRegistry()
        self._lookup = self.registry.lookup
        self.maxInFlight = maxInFlight
        self.auth = auth
        self.hooks = list(hooks)
        self.compressor = compressor
        self.compressThreshold = compressThreshold
        self.taskPool = taskPool
        self.connections: set[RpcConnection] = set()
        self.calls = self.errors = self.busy = self.cancelled = 0
        self._draining = False

    def connectionOpened(self, connection: RpcConnection) -> None:
        """
        @param connection: a connection whose session opened.
        """
        self.connections.add(connection)
        self._hook("connected", connection.session)

    def connectionClosed(self, connection: RpcConnection) -> None:
        """
        @param connection: a connection whose session closed.
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
                    _log.failure("txgetty rpc: hook {hook!r}.{name} raised", hook=hook, name=name,
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
                      session=session, why=why)
        if frame.type == F.REQUEST:
            connection.respond(F.Frame(F.RESPONSE, frame.requestId, errorHead("AuthError", why),
                                       b"", frame.serializer))
        session.close(f"authentication failed: {closeWhy}")

    # -- calls ------------------------------------------------------------------

    def request(self, connection: RpcConnection, frame: F.Frame) -> None:
        """
        Run one request or oneway call.  The common case (JSON, nothing
        compressed, no hooks, a method that answers at once) takes the
        shortest path; everything else goes through C{_finish}.
        """
        head = frame.head
        # A missing key looks up None: no such service, no such method.
        method = self._lookup(head.get(F.SERVICE), head.get(F.METHOD))  # type: ignore[arg-type]
        isRequest = frame.type == F.REQUEST
        timeoutMs = head.get(F.TIMEOUT_MS)
        deadline = 0.0 if timeoutMs is None else deadlineOf(timeoutMs)
        if deadline is None:
            deadline = parseDeadline(timeoutMs)  # type: ignore[arg-type]
        if (method is None or deadline is None or self._draining or len(connection.calls) >= self.maxInFlight
                or (isRequest and frame.requestId in connection.calls)):
            self._refuse(connection, frame)
            return
        info = self._before(connection, frame) if self.hooks else None
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
        token = CURRENT_CALL.set((frame, connection.session, self.reactor.seconds()))
        try:
            if method.blocking:
                result: Any = runBlocking(self.taskPool, method, args, kwargs)
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
            CURRENT_CALL.reset(token)
        if type(result) not in _PLAIN_RESULTS and isinstance(result, Deferred):
            self._later(connection, frame, info, result, deadline)
        elif info is None and isRequest and plain and self._quickAnswer(connection, frame, result):
            return
        else:
            self._finish(connection, frame, info, result)

    def _quickAnswer(self, connection: RpcConnection, frame: F.Frame, result: Any) -> bool:
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
        if session._state.writable:
            session.writePkg(F.responseBytes(frame.requestId, body, frame.serializer, NONE))
        return True

    def _refuse(self, connection: RpcConnection, frame: F.Frame) -> None:
        """
        Answer (or, for a oneway, count) a call that cannot run.
        """
        error = self._refusal(connection, frame)
        if frame.type == F.REQUEST:
            self._answer(connection, frame, error)
        else:
            self.errors += 1

    def _before(self, connection: RpcConnection, frame: F.Frame) -> CallInfo:
        """
        @return: the call's L{CallInfo}, after the C{beforeCall} hooks saw it.
        """
        head = frame.head
        visible = {k: v for k, v in head.items() if k != F.AUTH}
        info = CallInfo(head[F.SERVICE], head[F.METHOD], frame.requestId, connection.session, visible,
                        self.reactor.seconds())
        self._hook("beforeCall", info)
        return info

    def _refusal(self, connection: RpcConnection, frame: F.Frame) -> dict[str, str]:
        """
        @return: the error head refusing a request that cannot run, by the
            first reason that applies, in the order of docs/rpc-protocol.md
            (I{Refusals}).
        """
        head = frame.head
        if self._draining:
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

    def _later(self, connection: RpcConnection, frame: F.Frame, info: CallInfo | None, d: Deferred,
               deadline: float) -> None:
        """
        Track an unfinished call: deadline, cancellation, answer when done.

        @param deadline: seconds until the call's deadline, 0 for none.
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
                if info is not None:
                    self._hook("afterCall", info, outcome)
                return
            self._finish(connection, frame, info, outcome)

        d.addBoth(done)

    def _expired(self, connection: RpcConnection, call: PendingCall) -> None:
        """
        A call's deadline passed: log it, cancel the call (no answer).
        """
        call.timer = None
        _log.info("txgetty rpc: {call} on {session} cancelled: its deadline (timeout-ms {timeout}) passed",
                  call=describeCall(call.frame), session=connection.session, timeout=call.frame.head[F.TIMEOUT_MS])
        call.cancel()

    def _finish(self, connection: RpcConnection, frame: F.Frame, info: CallInfo | None, outcome: Any,
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
                _log.error("txgetty rpc: {call} on {session}: {type}: {why}", call=describeCall(frame),
                           session=connection.session, type=type(e).__name__, why=e)
                outcome = Failure()
        elif isinstance(outcome, Failure):
            self._logFailure(connection, frame, outcome, byCaller or outcome.check(ServiceError) is not None)
        if info is not None:
            self._hook("afterCall", info, outcome)
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

    def _logFailure(self, connection: RpcConnection, frame: F.Frame, failure: Failure, expected: bool) -> None:
        """
        Log a failed call once: an expected failure (a L{ServiceError}, the
        caller's mistake) as one info line, any other at error level with
        its traceback.
        """
        fields = dict(call=describeCall(frame), session=connection.session, type=failure.type.__name__,
                      why=cutText(failure.getErrorMessage(), 1000))
        if expected:
            _log.info("txgetty rpc: {call} on {session} raised {type}: {why}", **fields)
        else:
            _log.failure("txgetty rpc: {call} on {session} raised {type}: {why}", failure, LogLevel.error, **fields)

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


def runBlocking(taskPool: Any, method: Any, args: list, kwargs: dict) -> Deferred:
    """
    Run a method marked blocking in the task pool.

    @param taskPool: the server's task pool, or C{None}.
    @param method: a registered method marked blocking.
    @param args: its positional arguments.
    @param kwargs: its keyword arguments.
    @return: the method's outcome, run in the task pool.
    @raise TypeError: the method does not take these arguments (checked
        here, in the reactor thread, before a thread is taken).
    """
    if taskPool is None:
        raise RuntimeError(f"{method.qualifiedName} is marked blocking but the server has no taskPool")
    signature = _signature(method.function)
    if signature is not None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{method.qualifiedName}() {e}") from None
    return taskPool.run(method.function, *args, **kwargs)


def _refusedArguments(error: Exception) -> bool:
    """
    @param error: what running a method raised in L{CallDispatcher.request}.
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


_BLOCKING_CODE = runBlocking.__code__
