"""
The RPC client: calls over a txgetty client pool per server address, with
timeouts, cancellation that reaches the server, heartbeats, load balancing
over several servers and failover for idempotent calls::

    client = RpcClient(["127.0.0.1:8091", "127.0.0.1:8092"], balance="least-pending")
    client.startService()
    print(await client.call("Echo.echo", "hi", timeout=5))
    calc = client.proxy("Calc")
    print(await calc.add(1, 2))
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any, Callable, Sequence, cast

from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred, FirstError, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..client import Client
from ..config import SessionConfig
from ..errors import ConfigError, NoSessionError
from ..histogram import CallStats
from ..interfaces import ICallOwner
from . import frame as F
from .balance import HashRing, hashKey
from .body import compressBody, decodeResult, encodeArguments
from .calling import ClientCall, ClientConnection
from .errors import CallTimeoutError, ConnectionLostError, FrameError, NoServerError, RemoteError
from .serializers import DEFAULT_COMPRESS_THRESHOLD, compressor, serializer
from .server import runningTrace
from .tracing import OTEL, ClientTrace, clientTrace

_log = Logger()

BALANCES = ("round-robin", "random", "least-pending", "consistent-hash")
FAILOVERS = ("fail-fast", "retry")
DEFAULT_TIMEOUT = 30.0
DEFAULT_HEARTBEAT = 15.0
_RETRYABLE = ("ShuttingDown", "ServerBusy")


@implementer(IService, ICallOwner)
class RpcClient(MultiService):
    """
    Calls services on one or more RPC servers (an L{IService <twisted.application.service.IService>}).

    @ivar addresses: the servers, as given.
    @ivar calls: calls answered.
    @ivar failures: calls that failed (remote errors included).
    @ivar retried: calls re-sent to another server.
    @ivar callStats: every finished call by service, method and outcome
        (C{ok}, C{deadline}, C{cancelled}, C{busy}, the remote error's
        type, or the local error's class), with its latency (what
        L{txgetty.metrics} exposes).
    """

    def __init__(
        self,
        addresses: str | Sequence[str],
        *,
        connections: int = 1,
        reactor: Any = None,
        tls: Any = None,
        config: SessionConfig | None = None,
        reconnect: Any = None,
        connectTimeout: float = 5.0,
        serializer: str | int = "json",
        compressor: str | int = "none",
        compressThreshold: int = DEFAULT_COMPRESS_THRESHOLD,
        timeout: float | None = DEFAULT_TIMEOUT,
        heartbeat: float = DEFAULT_HEARTBEAT,
        balance: str = "round-robin",
        failover: str = "fail-fast",
        retries: int = 1,
        auth: str | None = None,
        metadata: dict[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """
        @param addresses: one address or several (as for
            L{txgetty.Client}: C{HOST:PORT}, C{tls:HOST:PORT}, ...).
        @param connections: sessions per address.
        @param reactor: the reactor; the global one if C{None}.
        @param tls: L{TLSClientSettings <txgetty.transports.tls.TLSClientSettings>}.
        @param config: session settings (C{cronPeriod} is set from
            C{heartbeat}).
        @param reconnect: the L{ReconnectPolicy <txgetty.client.reconnect.ReconnectPolicy>}.
        @param connectTimeout: seconds per connection attempt.
        @param serializer: C{json} (default), C{msgpack}, C{raw}, or a code.
        @param compressor: compressor for request bodies above the threshold.
        @param compressThreshold: bytes above which bodies are compressed.
        @param timeout: default seconds a call may take (C{None}: no limit);
            sent to the server as its deadline.
        @param heartbeat: seconds between heartbeats on each connection; one
            unanswered for a whole period closes the connection.
        @param balance: how a server is picked: C{round-robin},
            C{random}, C{least-pending} or C{consistent-hash}.
        @param failover: C{fail-fast}, or C{retry}: calls marked idempotent
            whose connection is lost (or whose server is busy or shutting
            down) are sent to another server, up to C{retries} times.
        @param retries: extra attempts for C{retry}.
        @param auth: a token sent with every request (head entry C{auth}).
        @param metadata: head entries sent with every request.
        @param rng: the random source for C{random} balancing.
        @raise ConfigError: a value cannot work (a non-text C{auth} token or
            C{metadata} entry among them).
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self._dynamic = addresses is _FROM_REGISTRY
        addresses = [] if self._dynamic else [addresses] if isinstance(addresses, str) else list(addresses)
        if not addresses and not self._dynamic:
            raise ConfigError("an RpcClient needs at least one server address")
        if balance not in BALANCES:
            raise ConfigError(f"balance must be one of {', '.join(BALANCES)}, got {balance!r}")
        if failover not in FAILOVERS:
            raise ConfigError(f"failover must be one of {', '.join(FAILOVERS)}, got {failover!r}")
        try:
            self.serializer = _serializerCode(serializer)
            self.compressor = _compressorCode(compressor)
        except FrameError as e:
            raise ConfigError(str(e)) from None
        self._compressorName = str(self.compressor)
        self.reactor = reactor
        self.addresses: list[str] = []
        self.timeout = timeout
        self.balance = balance
        self.failover = failover
        self.maxRetries = retries
        self.compressThreshold = compressThreshold
        self.baseHead = dict(metadata or {})
        if auth is not None:
            self.baseHead[F.AUTH] = auth
        if auth is not None and not isinstance(auth, str):
            raise ConfigError(f"the auth token must be text, got a {type(auth).__name__}")
        try:
            _checkMetadata(metadata)
        except TypeError as e:
            raise ConfigError(str(e)) from None
        self.random = rng or random.Random()
        self.calls = self.failures = self.retried = 0
        self.callStats = CallStats()
        from dataclasses import replace

        config = replace(config or SessionConfig(), cronPeriod=heartbeat)
        self.maxMsgLen = config.maxMsgLen
        self._pools: dict[str, Client] = {}
        self._poolSettings = dict(connections=connections, reactor=reactor, config=config, reconnect=reconnect,
                                  connectTimeout=connectTimeout, tls=tls, rng=self.random)
        self._leaving: set[str] = set()
        self._ring = HashRing([])
        self._next = 0
        self._parked: list[ClientCall] = []
        self._watching = False
        self.registry: Any = None
        for address in addresses:
            self.addServer(address)

    @classmethod
    def fromRegistry(cls, url: str, service: str, *, reactor: Any = None, etcd: Any = None,
                     **kw: Any) -> RpcClient:
        """
        A client of the servers registered in etcd for one service: it reads
        them, then follows the registry (servers that join are balanced
        onto, servers whose key goes get no new call).

        @param url: the registry, C{etcd://HOST[:PORT][/PREFIX]}.
        @param service: the service whose servers to call.
        @param reactor: the reactor; the global one if C{None}.
        @param etcd: an L{IEtcdClient <txgetty.interfaces.IEtcdClient>} to
            use instead of a new one (a L{MemoryEtcd
            <txgetty.discovery.testing.MemoryEtcd>} in tests).
        @param kw: the other arguments of L{RpcClient}.
        @return: the client (not started); its C{registry} is the
            L{RegistryFollower <txgetty.rpc.discovered.RegistryFollower>}.
        @raise ConfigError: the URL, the service name or an argument is wrong.
        """
        from .discovered import RegistryFollower

        client = cls(_FROM_REGISTRY, reactor=reactor, **kw)
        client.registry = RegistryFollower.fromURL(client, url, service, etcd)
        client.registry.setServiceParent(client)
        return client

    def addServer(self, address: str) -> None:
        """
        Balance calls onto one more server (nothing if it is there).

        @param address: as in the constructor's C{addresses}.
        """
        if address in self._pools:
            self._leaving.discard(address)
        else:
            pool = Client(address, partial(self._newSession, address), **self._poolSettings)
            self._pools[address] = pool
            pool.setServiceParent(self)
            if self._watching:
                pool.whenConnected().addCallbacks(self._watchFired, self._poolFailed)
        if address not in self.addresses:
            self.addresses.append(address)
            self._ring = HashRing(self.addresses)

    def removeServer(self, address: str) -> None:
        """
        Send no new call to a server; its connections close once the calls
        sent to it are settled (a call whose connection is lost first fails
        over as C{failover} says).

        @param address: an address of L{addresses}.
        """
        if address not in self.addresses:
            return
        self.addresses.remove(address)
        self._ring = HashRing(self.addresses)
        self._leaving.add(address)
        self.serverIdle(address)

    def serverIdle(self, address: str) -> None:
        """
        No call may wait on a server's connections any more (told by them):
        if the server was removed, close its pool once none does.

        @param address: an address given to L{addServer}.
        """
        if address in self._leaving and not self._pendingOn(address):
            self._leaving.discard(address)
            pool = self._pools.pop(address)
            self.reactor.callLater(0, pool.disownServiceParent)

    def _newSession(self, address: str, session: Any) -> None:
        """
        @param address: the server address of the pool.
        @param session: a new session of that pool.
        """
        session.codec = _CODEC
        session.listener = ClientConnection(self, address)

    # -- calling ---------------------------------------------------------------

    def call(self, name: str, *args: Any, timeout: Any = "default", metadata: dict[str, str] | None = None,
             kwargs: dict[str, Any] | None = None, idempotent: bool = False, hashKey: Any = None,
             traceparent: str | None = None, tracestate: str | None = None) -> Deferred:
        """
        Call C{Service.method} with arguments.

        @param name: C{"Service.method"}.
        @param args: positional arguments (serializable values).
        @param timeout: seconds for this call (default: the client's);
            C{None} for no limit.
        @param metadata: head entries for this call (trace ids, ...).
        @param kwargs: keyword arguments for the method.
        @param idempotent: the call may safely run twice: with
            C{failover="retry"} it is re-sent to another server when its
            connection is lost or its server is busy.
        @param hashKey: what C{consistent-hash} balancing hashes (default:
            the call name and first argument).
        @param traceparent: the W3C C{traceparent} to send (the caller's
            span as parent).  By default, inside an RPC method whose call
            has a trace context, that context is passed on; see
            docs/observability.md, "Trace context".
        @param tracestate: the C{tracestate} sent with C{traceparent}.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the result, or failing with
            L{RemoteError}, L{CallTimeoutError}, L{ConnectionLostError},
            L{NoServerError}; cancelling it cancels the call on the server.
        @raise ValueError: the name is not C{Service.method}, or
            C{traceparent} is not a valid one.
        """
        _checkCall(name, metadata)
        trace = _traceOf(name, traceparent, tracestate)
        pending = ClientCall(Deferred(lambda d: self._cancel(pending)), name, args,
                           {"timeout": self.timeout if timeout == "default" else timeout, "metadata": metadata,
                            "kwargs": kwargs, "idempotent": idempotent, "hashKey": hashKey, "oneway": False,
                            "trace": trace}, self.reactor.seconds())
        if trace is not None and trace.span is not None:
            pending.deferred.addBoth(trace.finish)
        if pending.options["timeout"] is not None:
            pending.deadline = self.reactor.seconds() + pending.options["timeout"]
            pending.timer = self.reactor.callLater(pending.options["timeout"], self._timedOut, pending)
        self._send(pending)
        return pending.deferred

    def oneway(self, name: str, *args: Any, metadata: dict[str, str] | None = None,
               kwargs: dict[str, Any] | None = None, traceparent: str | None = None,
               tracestate: str | None = None) -> Deferred:
        """
        Call C{Service.method} without getting an answer (nor an error).

        @param name: C{"Service.method"}.
        @param args: positional arguments.
        @param metadata: head entries for this call.
        @param kwargs: keyword arguments.
        @param traceparent: as for L{call}.
        @param tracestate: as for L{call}.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{None} once the call is sent (it
            waits for a connection as L{call} does), or failing with
            L{NoServerError} if no server can be reached.
        """
        _checkCall(name, metadata)
        trace = _traceOf(name, traceparent, tracestate)
        pending = ClientCall(Deferred(), name, args, {"timeout": None, "metadata": metadata, "kwargs": kwargs,
                                                     "idempotent": False, "hashKey": None, "oneway": True,
                                                     "trace": trace})
        if trace is not None and trace.span is not None:
            pending.deferred.addBoth(trace.finish)
        self._send(pending)
        return pending.deferred

    def proxy(self, service: str) -> Proxy:
        """
        @param service: a service name.
        @return: an object whose attributes are that service's methods:
            C{await client.proxy("Calc").add(1, 2)}.
        """
        return Proxy(self, service)

    def _send(self, pending: ClientCall) -> None:
        """
        Send a call on a connection picked by the balance policy, or wait
        for one to open.
        """
        connection = self._pick(pending)
        if connection is None:
            self._waitForConnection(pending)
            return
        pending.attempts += 1
        pending.tried.add(connection.address)
        oneway = pending.options["oneway"]
        rid = 0 if oneway else connection.newId()
        try:
            frame = self._frame(pending, connection, F.ONEWAY if oneway else F.REQUEST, rid)
        except Exception:
            self._fail(pending, Failure())
            return
        try:
            connection.session.writePkg(frame)
        except Exception:
            self._fail(pending, Failure())
            return
        if oneway:
            pending.deferred.callback(None)
            return
        pending.connection = connection
        pending.requestId = rid
        connection.pending[rid] = pending

    def _frame(self, pending: ClientCall, connection: ClientConnection, type: int, rid: int) -> F.Frame:
        """
        @return: the request frame of a call.
        """
        service, _, method = pending.name.partition(".")
        head = dict(self.baseHead)
        trace = pending.options["trace"]
        if trace is not None:
            head.update(trace.head)
        if pending.options["metadata"]:
            head.update(pending.options["metadata"])
        head[F.SERVICE], head[F.METHOD] = service, method
        if pending.deadline is not None:
            # What is left of the call's time (it may have waited, or be a
            # retry), as the server's deadline.
            left = pending.deadline - self.reactor.seconds()
            head[F.TIMEOUT_MS] = str(max(1, int(left * 1000)))
        if self.compressor:
            head[F.ACCEPT_COMPRESSOR] = self._compressorName
        body, comp = compressBody(self._body(pending), self.compressor, self.compressThreshold)
        return F.Frame(type, rid, head, body, self.serializer, comp)

    def _body(self, pending: ClientCall) -> bytes:
        """
        @return: the serialized arguments of a call: a list, or
            C{{"args", "kwargs"}}; with the raw serializer, the one bytes
            argument itself.
        @raise TypeError: the raw serializer without exactly one bytes
            argument.
        """
        return encodeArguments(pending.args, pending.options["kwargs"], self.serializer)

    def _pick(self, pending: ClientCall) -> ClientConnection | None:
        """
        @return: an open connection chosen by the balance policy, or C{None}.
        """
        # Closing and draining sessions do not count: a call retried from
        # the onClose of one must go elsewhere; and a retry prefers servers
        # not tried yet.
        up = [a for a in self.addresses if self._usable(a)]
        if pending.tried and len(up) > 1:
            up = [a for a in up if a not in pending.tried] or up
        if not up:
            return None
        if self.balance == "random":
            address = self.random.choice(up)
        elif self.balance == "least-pending":
            address = min(up, key=self._pendingOn)
        elif self.balance == "consistent-hash":
            address = self._ring.lookup(hashKey(pending), up)
        else:
            self._next = (self._next + 1) % len(up)
            address = up[self._next]
        connection = cast(ClientConnection, self._pools[address].session().listener)
        if connection.draining:
            usable = self._usable(address)
            self._next = (self._next + 1) % len(usable)
            connection = usable[self._next]
        return connection

    def _usable(self, address: str) -> list[ClientConnection]:
        """
        @return: the connections to an address that take new calls (open,
            not draining).
        """
        connections = [cast(ClientConnection, s.listener) for s in self._pools[address].sessions() if not s.isClosed]
        return [c for c in connections if not c.draining]

    def _names(self) -> str:
        """
        @return: the servers' labels, for messages.
        """
        return ", ".join(pool.label for pool in self._pools.values())

    def whenConnected(self) -> Deferred:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{None} once a connection to some
            server is open (failing if every server gave up, see
            L{ReconnectPolicy <txgetty.client.reconnect.ReconnectPolicy>}).
        """
        if any(not s.isClosed for pool in self._pools.values() for s in pool.sessions()):
            return succeed(None)
        d: Deferred = Deferred()
        left = [len(self._pools)]

        def opened(_: Any) -> None:
            if not d.called:
                d.callback(None)

        def failed(failure: Failure) -> None:
            left[0] -= 1
            if not left[0] and not d.called:
                d.errback(failure)

        for pool in self._pools.values():
            pool.whenConnected().addCallbacks(opened, failed)
        return d

    def whenAllConnected(self) -> Deferred:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{None} once every server has all
            its connections open.
        """
        waits = [pool.whenAllConnected() for pool in self._pools.values()]
        return gatherResults(waits, consumeErrors=True).addCallbacks(
            lambda _: None, lambda f: f.value.subFailure if isinstance(f.value, FirstError) else f
        )

    def _pendingOn(self, address: str) -> int:
        """
        @return: calls waiting for answers on an address's sessions.
        """
        return sum(len(cast(ClientConnection, s.listener).pending) for s in self._pools[address].sessions())

    def _waitForConnection(self, pending: ClientCall) -> None:
        """
        Park a call until a connection opens (its timeout still runs).
        """
        self._parked.append(pending)
        self._watch()

    def _watch(self) -> None:
        """
        Watch the pools for a connection (or for all of them giving up),
        for the parked calls.  A pool whose only sessions are closing or
        draining answers at once: the parked calls then wait for the next
        connection that opens (L{connectionOpened}), or, once those
        sessions are gone, for the next watch (L{connectionClosed}).
        """
        if self._watching or not self._parked:
            return
        self._watching = True
        for pool in self._pools.values():
            pool.whenConnected().addCallbacks(self._watchFired, self._poolFailed)

    def _watchFired(self, session: Any) -> None:
        """
        A pool has an open session: send the parked calls if a connection
        takes them.
        """
        self._watching = False
        if any(self._usable(address) for address in self.addresses):
            self._sendParked()

    def connectionOpened(self, session: Any) -> None:
        """
        One of this client's connections opened (told by it): send the
        parked calls (from the next turn, once the pool counts it).

        @param session: its session.
        """
        if self._parked:
            self.reactor.callLater(0, self._sendParked)

    def connectionClosed(self) -> None:
        """
        One of this client's connections closed (told by it): watch again
        for the parked calls (from the next turn, once the pool no longer
        counts it).
        """
        if self._parked:
            self.reactor.callLater(0, self._watch)

    def _sendParked(self) -> None:
        """
        Send the parked calls (those that find no connection park again).
        """
        self._watching = False
        parked, self._parked = self._parked, []
        for pending in parked:
            if not pending.deferred.called:
                self._send(pending)

    def _poolFailed(self, failure: Failure) -> None:
        """
        A pool gave up (or was stopped): if no pool can connect any more,
        the parked calls fail.  (A pool whose only sessions are closing
        fails its watch with L{NoSessionError}: the next connection or
        close sends or watches again.)
        """
        if failure.check(NoSessionError):
            self._watching = False
            return
        if not all(pool.allGaveUp() for pool in self._pools.values()):
            return
        if self._dynamic and self.running:
            return  # a server may still join: parked calls wait, their timeout runs
        self._watching = False
        parked, self._parked = self._parked, []
        for pending in parked:
            self._fail(pending, Failure(NoServerError(
                f"no server of {self._names()} can be reached: {failure.getErrorMessage()}"
            )))

    # -- outcomes ---------------------------------------------------------------

    def callAnswered(self, pending: ClientCall, frame: F.Frame) -> None:
        """
        A response arrived (its connection reports it): retry, fail or
        settle the call.

        @param pending: the call answered.
        @param frame: its response.
        """
        head = frame.head
        if head.get(F.STATUS) == "error":
            error = RemoteError(head.get(F.ERROR_TYPE, "Error"), head.get(F.ERROR_MESSAGE, ""),
                                head.get(F.ERROR_CODE))
            if error.type == "ShuttingDown" and pending.connection is not None:
                # The call did not run: send it again elsewhere, whatever
                # its idempotency, without counting an attempt.
                pending.connection.drain()
                pending.refusedBy = pending.connection.address
                pending.attempts -= 1
                self.retried += 1
                self._send(pending)
                return
            if error.type in _RETRYABLE and self._mayRetry(pending):
                self.retried += 1
                self._send(pending)
                return
            self._fail(pending, Failure(error))
            return
        try:
            value = decodeResult(frame, self.maxMsgLen)
        except Exception as e:
            self._fail(pending, Failure(FrameError(f"cannot decode the response to {pending.name}: {e}")))
            return
        self.calls += 1
        self._settle(pending)
        self._count(pending, "ok")
        pending.deferred.callback(value)

    @property
    def inFlight(self) -> int:
        """
        Calls sent and not answered, and calls waiting for a connection.
        """
        return len(self._parked) + sum(len(cast(ClientConnection, s.listener).pending)
                                       for pool in self._pools.values() for s in pool.sessions())

    def _count(self, pending: ClientCall, outcome: str) -> None:
        """
        Count a finished call in L{callStats}.

        @param outcome: how it ended.
        """
        if self.callStats.watched:
            service, _, method = pending.name.partition(".")
            self.callStats.record(service, method, outcome, self.reactor.seconds() - pending.started)

    def callLost(self, pending: ClientCall, error: Exception) -> None:
        """
        The connection of a call is gone (it reports it): retry the call
        elsewhere if it may, else fail it.

        @param pending: the call without a connection.
        @param error: what it fails with.
        """
        if self._mayRetry(pending):
            self.retried += 1
            self._send(pending)
        else:
            self._fail(pending, Failure(error))

    def _mayRetry(self, pending: ClientCall) -> bool:
        """
        @return: whether the call may go to another server.
        """
        return (self.failover == "retry" and pending.options["idempotent"] and not pending.deferred.called
                and pending.attempts <= self.maxRetries)

    def _timedOut(self, pending: ClientCall) -> None:
        """
        The call's timeout passed: fail it, tell the server to stop.
        """
        pending.timer = None
        self._cancelRemote(pending)
        why = ""
        if pending in self._parked and (pending.refusedBy or not any(map(self._usable, self.addresses))):
            why = (f": no connection took it, every connection to {pending.refusedBy or self._names()} is going "
                   f"away or closed (the server is shutting down) and no new one opened")
        self._fail(pending, Failure(CallTimeoutError(
            f"{pending.name} got no answer within {pending.options['timeout']:g} s (timeout){why}"
        )))

    def _cancel(self, pending: ClientCall) -> None:
        """
        The caller cancelled the call's Deferred: tell the server.
        """
        self._cancelRemote(pending)
        self._settle(pending)
        self._count(pending, "cancelled")

    def _cancelRemote(self, pending: ClientCall) -> None:
        """
        Send a cancel frame for a call in flight.
        """
        connection = pending.connection
        if connection is not None and connection.pending.pop(pending.requestId, None) is pending:
            session = connection.session
            if session is not None and session.acceptsWrites:
                session.writePkg(F.Frame(F.CANCEL, pending.requestId, None, b"", self.serializer))
            connection.settled()
            self.serverIdle(connection.address)

    def _settle(self, pending: ClientCall) -> None:
        """
        Stop the call's timer.
        """
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        pending.timer = None

    def _fail(self, pending: ClientCall, failure: Failure) -> None:
        """
        Fail a call (once).
        """
        self._settle(pending)
        if not pending.deferred.called:
            self.failures += 1
            self._count(pending, _outcomeOf(failure))
            pending.deferred.errback(failure)

    def stopService(self) -> Deferred:
        """
        Stop: parked calls fail with L{NoServerError}; connections close
        (their pending calls fail at once).

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once every connection is closed.
        """
        parked, self._parked = self._parked, []
        for pending in parked:
            self._fail(pending, Failure(NoServerError("the RPC client was stopped")))
        return super().stopService()


class Proxy:
    """
    A service's methods as attributes: C{proxy.add(1, 2)} is
    C{client.call("Calc.add", 1, 2)}.
    """

    def __init__(self, client: RpcClient, service: str) -> None:
        """
        @param client: the client.
        @param service: the service name.
        """
        self._client = client
        self._service = service

    def __getattr__(self, method: str) -> Callable[..., Deferred]:
        """
        @param method: a method name.
        @return: a function calling it: positional and keyword arguments go
            to the method, except the keywords C{timeout}, C{metadata},
            C{idempotent}, C{hashKey}, C{traceparent} and C{tracestate},
            which are call options (pass
            method arguments of those names with C{kwargs=}).
        """
        if method.startswith("__"):
            raise AttributeError(method)
        name = f"{self._service}.{method}"
        call = self._client.call

        def invoke(*args: Any, **kw: Any) -> Deferred:
            options = {k: kw.pop(k) for k in _CALL_OPTIONS if k in kw}
            extra = kw.pop("kwargs", None) or {}
            return call(name, *args, kwargs={**extra, **kw} or None, **options)

        return invoke


_CALL_OPTIONS = ("timeout", "metadata", "idempotent", "hashKey", "traceparent", "tracestate")


def _traceOf(name: str, traceparent: str | None, tracestate: str | None) -> ClientTrace | None:
    """
    @return: the trace context a call sends (see
        L{txgetty.rpc.tracing.clientTrace}), or C{None}.
    @raise ValueError: C{traceparent} is not valid.
    """
    running = runningTrace()
    if traceparent is None and running is None and not OTEL:
        return None
    return clientTrace(name, traceparent, tracestate, running)


def _outcomeOf(failure: Failure) -> str:
    """
    @param failure: why a call failed.
    @return: its outcome label: C{deadline} (its timeout passed), C{busy}
        (the server answered C{ServerBusy}), the type of a remote error,
        or the class name of a local one.
    """
    error = failure.value
    if isinstance(error, CallTimeoutError):
        return "deadline"
    if isinstance(error, RemoteError):
        return "busy" if error.type == "ServerBusy" else error.type
    return type(error).__name__


def _checkCall(name: str, metadata: dict[str, str] | None) -> None:
    """
    @param name: a call name.
    @param metadata: head entries for the call.
    @raise ValueError: the name is not C{Service.method}.
    @raise TypeError: a metadata key or value is not text.
    """
    service, dot, method = name.partition(".")
    if not dot or not service or not method:
        raise ValueError(f"call names look like 'Service.method', got {name!r}")
    _checkMetadata(metadata)


def _checkMetadata(metadata: dict[str, str] | None) -> None:
    """
    @param metadata: head entries for calls.
    @raise TypeError: a key or value is not text.
    """
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata keys and values must be text, got {key!r}: {value!r}")


def _serializerCode(key: str | int) -> int:
    return serializer(key).code


def _compressorCode(key: str | int) -> int:
    return compressor(key).code


_CODEC = F.RpcCodec()

#: The addresses of a client built by L{RpcClient.fromRegistry}: none yet.
_FROM_REGISTRY: Any = object()
