"""
The RPC server: named services on a txgetty server, answered with frames of
L{txgetty.rpc.frame}.

A call runs in the reactor thread (plain, L{Deferred <twisted.internet.defer.Deferred>} or C{async def}
methods) or, for methods marked blocking, in the task pool.  What a method
raises becomes an error response; the connection stays open.  A connection
has at most C{maxInFlight} unfinished calls (more get an immediate
C{ServerBusy} error).  A caller's deadline (C{timeout-ms}) cancels the call
when it passes, and no late response is sent, as after a cancel frame.

The parts: L{txgetty.rpc.connection} (a connection's listener),
L{txgetty.rpc.dispatch} (running its calls), L{txgetty.rpc.calls} (one
call: its info, deadline and error head), L{txgetty.rpc.services} (the
registry), L{txgetty.rpc.body} (argument and result bodies).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Sequence

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from zope.interface import implementer

from ..config import SessionConfig
from ..errors import ConfigError
from ..interfaces import ICallDispatcher
from ..server import Server
from . import frame as F
from .calls import MAX_ERROR_TEXT, CallInfo, compressorFor, currentCall, cutText, errorCode, errorHead, quiet
from .connection import RpcConnection
from .dispatch import CallDispatcher
from .errors import FrameError
from .serializers import DEFAULT_COMPRESS_THRESHOLD

__all__ = ["RpcServer", "CallInfo", "currentCall", "cutText", "errorCode", "errorHead", "compressorFor",
           "MAX_ERROR_TEXT", "DEFAULT_MAX_IN_FLIGHT", "DEFAULT_IDLE_TIMEOUT", "DEFAULT_SHUTDOWN_TIMEOUT"]

DEFAULT_MAX_IN_FLIGHT = 256
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_SHUTDOWN_TIMEOUT = 10.0


@implementer(IService, ICallDispatcher)
class RpcServer(CallDispatcher, Service):
    """
    Named services over txgetty's wire frame (an L{IService <twisted.application.service.IService>}).
    Its connections' calls run through L{CallDispatcher}.

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
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        try:
            code = compressorFor(compressor)
        except FrameError as e:
            raise ConfigError(str(e)) from None
        CallDispatcher.__init__(self, reactor, maxInFlight=maxInFlight, auth=auth, hooks=hooks, compressor=code,
                                compressThreshold=compressThreshold, taskPool=taskPool)
        self.shutdownTimeout = shutdownTimeout
        self.started = reactor.seconds()
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
        waiting = DeferredList([quiet(d) for d in pending], consumeErrors=True)
        waiting.addTimeout(self.shutdownTimeout, self.reactor, onTimeoutCancel=lambda *_: None)
        return waiting.addBoth(lambda _: None)

    def _newSession(self, session: Any) -> None:
        """
        @param session: a new connection.
        """
        session.codec = _CODEC
        session.listener = RpcConnection(self)


_CODEC = F.RpcCodec()
