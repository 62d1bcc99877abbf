"""
A non-blocking client for etcd v3, through its JSON/HTTP gateway.

etcd 3.4 and later serve their gRPC API as JSON over HTTP/1.1 under
C{/v3/...} (the grpc-gateway): a request is a C{POST} of a JSON object, and
C{bytes} fields (keys, values) are base64 in it; 64-bit integers (lease
IDs, revisions, TTLs) come back as JSON strings.  A streaming call such as
C{/v3/watch} answers with a never-ending HTTP body holding one JSON object
per message, each wrapped as C{{"result": ...}} or C{{"error": ...}}.

Why L{twisted.web.client.Agent} and not treq or a gRPC client: the gateway
needs nothing but C{POST} with a JSON body and a streamed response, which
Twisted's own C{Agent} does natively (persistent
L{HTTPConnectionPool <twisted.web.client.HTTPConnectionPool>}, cancellable
requests, a body delivered to a protocol chunk by chunk).  treq would only
add a dependency for convenience wrappers that a JSON-only client does not
use, and its streaming support is the same C{deliverBody}.  gRPC's Python
client runs its own threads and event loop, and the maintained etcd
packages for Python (python-etcd3, etcd3gw, aetcd) are blocking or
asyncio-based; none belongs in the reactor thread.  So this module adds no
dependency.

Usage::

    endpoint, prefix = parseEtcdURL("etcd://127.0.0.1:2379/myapp")
    client = EtcdClient(reactor, endpoint)
    lease = await client.grantLease(10)
    await client.put(prefix + "/hello", b"world", lease=lease)
    revision, found = await client.getPrefix(prefix + "/")
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable
from urllib.parse import urlsplit

from twisted.internet import error as netError
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IConsumer, IReactorTime
from twisted.python.failure import Failure
from twisted.web import _newclient
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer
from zope.interface import implementer

from ..errors import ConfigError
from ._stream import JSONObjectStream, JSONStreamError
from ._watch import EtcdWatch, WatchEvent
from .errors import (
    EtcdError,
    EtcdLeaseNotFoundError,
    EtcdProtocolError,
    EtcdUnavailableError,
)
from ..interfaces import IEtcdClient, IEtcdWatchClient

__all__ = [
    "DEFAULT_ETCD_PORT",
    "DEFAULT_PREFIX",
    "DEFAULT_TIMEOUT",
    "EtcdClient",
    "WatchEvent",
    "parseEtcdURL",
    "prefixRangeEnd",
]

#: The key prefix of a registry URL without a path.
DEFAULT_PREFIX = "/txgetty"
#: etcd's client port, used when a registry URL names none.
DEFAULT_ETCD_PORT = 2379
#: The default bound on one request, in seconds.
DEFAULT_TIMEOUT = 5.0

#: gRPC status codes etcd answers with.
_NOT_FOUND = 5
_UNAVAILABLE = 14

#: What connecting or talking to etcd can fail with, for an unreachable or
#: vanished etcd (rather than a bug).
_NETWORK_ERRORS = (
    netError.ConnectError,
    netError.ConnectionLost,
    netError.ConnectionDone,
    netError.DNSLookupError,
    netError.TimeoutError,
    _newclient.RequestTransmissionFailed,
    _newclient.ResponseFailed,
    _newclient.ResponseNeverReceived,
)


def _configError(url: str, why: str) -> ConfigError:
    """
    @param url: the registry URL given.
    @param why: what is wrong with it.
    @return: the error, naming the setting.
    """
    return ConfigError(f"the registry URL {url!r} {why}; expected etcd://HOST:PORT[/PREFIX] (--registry)")


def parseEtcdURL(url: str) -> tuple[str, str]:
    """
    Split a registry URL into the etcd endpoint and the key prefix.

    C{etcd://HOST[:PORT][/PREFIX]}: the port defaults to 2379, the prefix
    to C{/txgetty}; an IPv6 host is written in brackets
    (C{etcd://[::1]:2379}).  A trailing slash of the prefix is dropped.

    @param url: the URL.
    @return: C{("http://HOST:PORT", "/PREFIX")}.
    @raise ConfigError: the URL is not of that form; the message says what
        is wrong.
    """
    if not isinstance(url, str) or not url:
        raise _configError(str(url), "is empty")
    parts = urlsplit(url)
    if parts.scheme != "etcd" or not url.startswith("etcd://"):
        raise _configError(url, "must start with etcd://")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise _configError(url, "must not have a query or fragment")
    if "@" in parts.netloc:
        raise _configError(url, "must not carry a user or password (etcd authentication is not supported)")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise _configError(url, "has a port that is not a number 1-65535") from None
    if not host:
        raise _configError(url, "names no host")
    if port == 0:
        raise _configError(url, "has a port that is not a number 1-65535")
    port = DEFAULT_ETCD_PORT if port is None else port
    hostText = f"[{host}]" if ":" in host else host
    prefix = parts.path.rstrip("/")
    if "//" in parts.path:
        raise _configError(url, "has an empty segment in its prefix")
    return f"http://{hostText}:{port}", prefix or DEFAULT_PREFIX


def _keyBytes(key: str | bytes) -> bytes:
    """
    @param key: a key or value as given.
    @return: its bytes (UTF-8, with lone surrogates round-tripping).
    """
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8", "surrogateescape")
    raise TypeError(f"an etcd key or value must be str or bytes, got {key!r}")


def _b64(data: str | bytes) -> str:
    """
    @param data: a key or value.
    @return: its base64 text, as the gateway wants C{bytes} fields.
    """
    return base64.b64encode(_keyBytes(data)).decode("ascii")


def _unb64(text: str | None) -> bytes:
    """
    @param text: a base64 field as etcd sends it (absent when empty).
    @return: its bytes.
    """
    return base64.b64decode(text) if text else b""


def _keyText(raw: bytes) -> str:
    """
    @param raw: a key's bytes.
    @return: the key as text (the inverse of L{_keyBytes}).
    """
    return raw.decode("utf-8", "surrogateescape")


def prefixRangeEnd(prefix: bytes) -> bytes:
    """
    etcd reads a prefix as the key range C{[prefix, rangeEnd)}.

    @param prefix: a key prefix (not empty).
    @return: the smallest key greater than every key with that prefix
        (C{b"\\0"}, meaning "to the end", when the prefix is all C{0xff}).
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\0"
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _int(value: Any, default: int = 0) -> int:
    """
    @param value: an integer field, which the gateway sends as a string
        (and omits when 0).
    @return: it as an C{int}.
    """
    return default if value is None else int(value)


@implementer(IBodyProducer)
class _BytesProducer:
    """
    A request body already in memory, written at once.

    @ivar length: its length.
    """

    def __init__(self, body: bytes) -> None:
        """
        @param body: the bytes.
        """
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        """
        @param consumer: where to write the body.
        @return: a fired L{Deferred <twisted.internet.defer.Deferred>}.
        """
        consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:
        """
        Nothing to pause: the body is written at once.
        """

    def resumeProducing(self) -> None:
        """
        Nothing to resume: the body is written at once.
        """

    def stopProducing(self) -> None:
        """
        Nothing to stop: the body is written at once.
        """


def _describe(failure: Failure) -> str:
    """
    @param failure: a network failure.
    @return: a short description of it (C{"connection refused"}).
    """
    value = failure.value
    if isinstance(value, netError.ConnectionRefusedError):
        return "connection refused"
    if isinstance(value, netError.DNSLookupError):
        return f"cannot resolve the host name: {value}"
    if isinstance(value, (_newclient.ResponseFailed, _newclient.ResponseNeverReceived)):
        reasons = [r.value for r in value.reasons if isinstance(r, Failure)]
        if any(isinstance(r, (netError.ConnectionDone, netError.ConnectionLost)) for r in reasons):
            return "the connection was closed before etcd answered"
    if isinstance(value, (netError.ConnectionDone, netError.ConnectionLost)):
        return "the connection was closed before etcd answered"
    return f"{type(value).__name__}: {value}"


@implementer(IEtcdClient, IEtcdWatchClient)
class EtcdClient:
    """
    An etcd v3 client for the JSON gateway.  Every method returns a
    L{Deferred <twisted.internet.defer.Deferred>}; none blocks.

    A request that takes longer than C{timeout} (connecting included) is
    cancelled and fails with L{EtcdUnavailableError}; so does one that
    cannot connect.  An error etcd answers with is an L{EtcdError} carrying
    etcd's message and gRPC code.

    @ivar url: the etcd endpoint (C{http://HOST:PORT}).
    @ivar timeout: the bound on one request, in seconds.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        url: str = f"http://127.0.0.1:{DEFAULT_ETCD_PORT}",
        timeout: float = DEFAULT_TIMEOUT,
        agent: IAgent | None = None,
    ) -> None:
        """
        @param reactor: the reactor (TCP and time), for connections and
            timeouts.
        @param url: the endpoint, C{http://HOST:PORT} or C{https://...}
            (L{parseEtcdURL} makes one from a registry URL).
        @param timeout: the bound on one request, in seconds (> 0).
        @param agent: the HTTP agent to use instead of an L{Agent} with a
            persistent connection pool (for tests).
        @raise ConfigError: the URL or the timeout cannot work.
        """
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ConfigError(f"the etcd endpoint {url!r} must be http://HOST:PORT (or https://)")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(f"the etcd request timeout must be a number of seconds > 0, got {timeout!r}")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self._reactor = reactor
        self._pool: HTTPConnectionPool | None = None
        if agent is None:
            self._pool = HTTPConnectionPool(reactor, persistent=True)
            self._pool.maxPersistentPerHost = 4
            self._agent: IAgent = Agent(reactor, connectTimeout=self.timeout, pool=self._pool)
        else:
            self._agent = agent
        self._watches: set[EtcdWatch] = set()

    def __repr__(self) -> str:
        return f"<EtcdClient {self.url}>"

    # -- plumbing ---------------------------------------------------------

    def _bounded(self, d: Deferred[Any], path: str, seconds: float) -> Deferred[Any]:
        """
        Cancel a request that takes too long and say so.

        @param d: the request's L{Deferred <twisted.internet.defer.Deferred>}.
        @param path: the gateway path, for the message.
        @param seconds: the bound.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} with C{d}'s result, or failing with
            L{EtcdUnavailableError} after C{seconds}; cancelling it cancels
            the request with L{CancelledError}.
        """
        timedOut: list[bool] = []

        def expire() -> None:
            timedOut.append(True)
            d.cancel()

        timer = self._reactor.callLater(seconds, expire)

        def done(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            if not isinstance(result, Failure):
                return result
            if timedOut:
                raise EtcdUnavailableError(self.url, path, f"no answer within {seconds:g} s")
            if result.check(netError.ConnectingCancelledError):
                raise CancelledError()
            return result

        return d.addBoth(done)

    def _networkError(self, path: str, failure: Failure) -> Exception:
        """
        @param path: the gateway path.
        @param failure: what the agent failed with.
        @return: the L{EtcdUnavailableError} for a network failure, or the
            failure's exception unchanged (a bug, or a cancellation).
        """
        if failure.check(*_NETWORK_ERRORS) and not failure.check(netError.ConnectingCancelledError):
            return EtcdUnavailableError(self.url, path, _describe(failure))
        return failure.value

    def _start(self, method: bytes, path: str, payload: Any) -> Deferred[Any]:
        """
        Send a request.

        @param method: C{b"POST"} or C{b"GET"}.
        @param path: the gateway path.
        @param payload: the JSON body, or C{None} for none.
        @return: the agent's L{Deferred <twisted.internet.defer.Deferred>} (firing with the response).
        """
        headers = Headers({b"Content-Type": [b"application/json"]})
        body = None if payload is None else _BytesProducer(json.dumps(payload).encode("utf-8"))
        return self._agent.request(method, (self.url + path).encode("ascii"), headers, body)

    async def _exchange(self, method: bytes, path: str, payload: Any) -> Any:
        """
        Send a request and decode the JSON answer.

        @param method: the HTTP method.
        @param path: the gateway path.
        @param payload: the JSON body, or C{None}.
        @return: the decoded answer (for a streaming path, the first
            message's C{result}).
        @raise EtcdError: etcd could not be reached or answered an error.
        """
        try:
            response = await self._start(method, path, payload)
            body = await readBody(response)
        except (CancelledError, netError.ConnectingCancelledError):
            raise
        except Exception:
            raise self._networkError(path, Failure()) from None
        return self.decodeAnswer(path, response.code, body)

    def decodeAnswer(self, path: str, code: int, body: bytes) -> Any:
        """
        @param path: the gateway path.
        @param code: the HTTP status.
        @param body: the HTTP body.
        @return: the answer: the JSON object, or for a streaming call the
            C{result} of its first message.
        @raise EtcdError: etcd answered an error, or not in JSON.
        """
        try:
            messages = JSONObjectStream().feed(body)
        except JSONStreamError:
            messages = []
        data = messages[0] if messages else None
        if not isinstance(data, dict):
            text = body[:100].decode("utf-8", "replace").strip()
            raise EtcdProtocolError(self.url, path, f"HTTP {code} and not a JSON object: {text!r}")
        if "error" in data:
            raise self.errorFromMessage(path, data)
        if code != 200:
            raise EtcdProtocolError(self.url, path, f"HTTP {code}: {body[:100]!r}")
        return data.get("result", data) if path in _STREAMING else data

    def errorFromMessage(self, path: str, data: dict[str, Any], leaseID: int | None = None) -> EtcdError:
        """
        Turn an error message of the gateway into an exception.

        A unary call's error is C{{"error": TEXT, "message": TEXT, "code":
        N}}; a streaming call's is C{{"error": {"grpc_code": N, "message":
        TEXT, ...}}}.

        @param path: the gateway path.
        @param data: the message.
        @param leaseID: the lease the request named, for the message.
        @return: the matching L{EtcdError}.
        """
        detail = data["error"] if isinstance(data.get("error"), dict) else data
        code = detail.get("code", detail.get("grpc_code"))
        message = str(detail.get("message") or detail.get("error") or "no message")
        code = code if isinstance(code, int) else None
        if code == _UNAVAILABLE:
            return EtcdUnavailableError(self.url, path, message, code)
        if code == _NOT_FOUND and "lease not found" in message:
            return EtcdLeaseNotFoundError(self.url, path, leaseID, message)
        return EtcdError(self.url, path, message, code)

    def _call(self, path: str, payload: Any, method: bytes = b"POST", leaseID: int | None = None) -> Deferred[Any]:
        """
        Make one bounded request.

        @param path: the gateway path.
        @param payload: the JSON body.
        @param method: the HTTP method.
        @param leaseID: the lease the request names, for error messages.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the decoded answer.
        """
        d = Deferred.fromCoroutine(self._exchange(method, path, payload))
        if leaseID is not None:
            d.addErrback(self._nameLease, leaseID)
        return self._bounded(d, path, self.timeout)

    @staticmethod
    def _nameLease(failure: Failure, leaseID: int) -> Failure:
        """
        @param failure: a failed request.
        @param leaseID: the lease it named.
        @return: the failure, with the lease ID filled into a lease error.
        """
        error = failure.value
        if isinstance(error, EtcdLeaseNotFoundError) and error.leaseID is None:
            return Failure(EtcdLeaseNotFoundError(error.url, error.path, leaseID, error.etcdMessage))
        return failure

    # -- leases ------------------------------------------------------------

    def grantLease(self, ttl: int) -> Deferred[int]:
        """
        Create a lease (C{/v3/lease/grant}).

        @param ttl: its time to live in whole seconds (>= 1); etcd raises a
            TTL below its minimum (2 s with the default election timeout of
            1 s) to that minimum.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the lease ID.
        @raise ConfigError: C{ttl} is not a positive integer.
        """
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
            raise ConfigError(f"a lease TTL must be a whole number of seconds >= 1, got {ttl!r}")
        return self._call("/v3/lease/grant", {"TTL": ttl}).addCallback(lambda data: _int(data["ID"]))

    def keepAliveOnce(self, leaseID: int) -> Deferred[int]:
        """
        Renew a lease once (one message on C{/v3/lease/keepalive}).

        @param leaseID: the lease.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with its TTL after renewal, C{0} when
            the lease no longer exists.
        """
        d = self._call("/v3/lease/keepalive", {"ID": str(leaseID)}, leaseID=leaseID)
        return d.addCallback(lambda data: max(0, _int(data.get("TTL"))))

    def revokeLease(self, leaseID: int) -> Deferred[bool]:
        """
        Revoke a lease (C{/v3/lease/revoke}): etcd deletes the keys attached
        to it in the same step.

        @param leaseID: the lease.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{True}, or C{False} when the
            lease no longer existed.
        """

        def gone(failure: Failure) -> bool:
            failure.trap(EtcdLeaseNotFoundError)
            return False

        d = self._call("/v3/lease/revoke", {"ID": str(leaseID)}, leaseID=leaseID)
        return d.addCallback(lambda data: True).addErrback(gone)

    def leaseTimeToLive(self, leaseID: int) -> Deferred[int]:
        """
        @param leaseID: the lease (C{/v3/lease/timetolive}).
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the seconds it has left, C{-1}
            when it does not exist.
        """
        d = self._call("/v3/lease/timetolive", {"ID": str(leaseID)}, leaseID=leaseID)
        return d.addCallback(lambda data: _int(data.get("TTL"), -1))

    # -- keys --------------------------------------------------------------

    def put(self, key: str, value: bytes | str, lease: int | None = None) -> Deferred[int]:
        """
        Set a key (C{/v3/kv/put}).

        @param key: the key.
        @param value: its value (C{str} is UTF-8 encoded).
        @param lease: a lease to attach it to; the key is deleted with the
            lease.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the revision of the write, or
            failing with L{EtcdLeaseNotFoundError} when the lease is gone.
        """
        payload: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease is not None:
            payload["lease"] = str(lease)
        d = self._call("/v3/kv/put", payload, leaseID=lease)
        return d.addCallback(lambda data: _int(data["header"].get("revision")))

    def get(self, key: str) -> Deferred[bytes | None]:
        """
        Read a key (C{/v3/kv/range}).

        @param key: the key.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with its value, C{None} when there is
            no such key.
        """

        def value(data: dict[str, Any]) -> bytes | None:
            kvs = data.get("kvs") or []
            return _unb64(kvs[0].get("value")) if kvs else None

        return self._call("/v3/kv/range", {"key": _b64(key)}).addCallback(value)

    def delete(self, key: str) -> Deferred[int]:
        """
        Delete a key (C{/v3/kv/deleterange}).

        @param key: the key.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with how many keys were deleted (0, 1).
        """
        d = self._call("/v3/kv/deleterange", {"key": _b64(key)})
        return d.addCallback(lambda data: _int(data.get("deleted")))

    def deletePrefix(self, prefix: str) -> Deferred[int]:
        """
        Delete every key that starts with a prefix.

        @param prefix: the prefix (not empty).
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with how many keys were deleted.
        """
        d = self._call("/v3/kv/deleterange", self._rangeOf(prefix))
        return d.addCallback(lambda data: _int(data.get("deleted")))

    def getPrefix(self, prefix: str) -> Deferred[tuple[int, dict[str, bytes]]]:
        """
        Read every key that starts with a prefix (C{/v3/kv/range}).

        @param prefix: the prefix (not empty).
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{(revision, {key: value})}.
        """

        def found(data: dict[str, Any]) -> tuple[int, dict[str, bytes]]:
            values = {_keyText(_unb64(kv.get("key"))): _unb64(kv.get("value")) for kv in data.get("kvs") or []}
            return _int(data["header"].get("revision")), values

        return self._call("/v3/kv/range", self._rangeOf(prefix)).addCallback(found)

    @staticmethod
    def _rangeOf(prefix: str) -> dict[str, str]:
        """
        @param prefix: a key prefix.
        @return: the C{key} and C{range_end} fields selecting it.
        @raise ValueError: the prefix is empty.
        """
        raw = _keyBytes(prefix)
        if not raw:
            raise ValueError("an etcd key prefix must not be empty")
        return {"key": _b64(raw), "range_end": _b64(prefixRangeEnd(raw))}

    def compact(self, revision: int) -> Deferred[None]:
        """
        Discard the history before a revision (C{/v3/kv/compaction}), as an
        operator does to bound etcd's size; watches that start before it
        are cancelled.

        @param revision: the oldest revision to keep.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once done.
        """
        return self._call("/v3/kv/compaction", {"revision": str(revision)}).addCallback(lambda _: None)

    def version(self) -> Deferred[dict[str, str]]:
        """
        Ask etcd its version (C{GET /version}); a cheap way to see that it
        answers.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with e.g. C{{"etcdserver": "3.4.23",
            "etcdcluster": "3.4.0"}}.
        """
        return self._call("/version", None, method=b"GET")

    # -- watches -------------------------------------------------------------

    def watchPrefix(
        self, prefix: str, startRevision: int, onEvent: Callable[[WatchEvent], object]
    ) -> Deferred[EtcdWatch]:
        """
        Watch every key that starts with a prefix (C{/v3/watch}).

        @param prefix: the prefix (not empty).
        @param startRevision: the first revision to report; C{0}: from now.
        @param onEvent: called with each L{WatchEvent}, in order; an
            exception it raises is logged and the watch goes on.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the L{EtcdWatch} once etcd
            created it (within the request timeout), or failing with an
            L{EtcdError}; cancelling it stops the watch.
        """
        request: dict[str, Any] = dict(self._rangeOf(prefix))
        if startRevision:
            request["start_revision"] = str(startRevision)
        watch = EtcdWatch(self, prefix, onEvent)
        self._watches.add(watch)
        watch.whenDone().addBoth(lambda _: self._watches.discard(watch))
        responded = self._start(b"POST", "/v3/watch", {"create_request": request})
        watch.attach(responded)
        return self._bounded(watch.whenCreated(), "/v3/watch", self.timeout)

    def watchFailed(self, failure: Failure) -> Exception:
        """
        Name the failure of a watch stream (for L{EtcdWatch}).

        @param failure: what the agent or the stream failed with.
        @return: the exception to end the watch with.
        """
        return self._networkError("/v3/watch", failure)

    def close(self) -> Deferred[None]:
        """
        Stop every watch still running and close idle connections.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once done.
        """
        stops = [watch.stop() for watch in list(self._watches)]

        async def closeAll() -> None:
            for stopped in stops:
                await stopped
            if self._pool is not None:
                await self._pool.closeCachedConnections()

        return Deferred.fromCoroutine(closeAll())


#: Gateway paths that are streaming calls (their answers are wrapped in
#: C{result}).
_STREAMING = frozenset({"/v3/lease/keepalive", "/v3/watch"})
