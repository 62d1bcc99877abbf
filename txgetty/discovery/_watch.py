"""
One watch of etcd's C{/v3/watch} stream: the HTTP response body is read by
a protocol, split into JSON messages by L{JSONObjectStream}, and turned into
L{WatchEvent}s.

A watch ends when L{EtcdWatch.stop} closes its connection, when etcd
cancels it (a compacted start revision), or when the stream is lost (etcd
stopped, the connection dropped).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.protocol import Protocol
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.client import readBody
from twisted.web.iweb import IResponse
from zope.interface import implementer

from ._stream import JSONObjectStream, JSONStreamError
from .errors import EtcdProtocolError, EtcdUnavailableError, EtcdWatchCanceledError
from ..interfaces import IEtcdWatch, IEtcdWatchClient


_PATH = "/v3/watch"


@dataclass(frozen=True)
class WatchEvent:
    """
    A change of a watched key.

    @ivar type: C{"PUT"} (set) or C{"DELETE"} (deleted, or its lease ended).
    @ivar key: the key.
    @ivar value: its new value for a C{PUT}, C{None} for a C{DELETE}.
    @ivar revision: the store revision of the change.
    @ivar lease: the lease the key is attached to (0: none; always 0 for a
        C{DELETE}).
    """

    type: str
    key: str
    value: bytes | None
    revision: int
    lease: int = 0

    @classmethod
    def fromMessage(cls, event: dict[str, Any]) -> WatchEvent:
        """
        @param event: one entry of a watch message's C{events} (the gateway
            omits C{"type"} for a C{PUT}, and every field that is 0 or
            empty).
        @return: the event.
        """
        kv = event.get("kv") or {}
        kind = event.get("type", "PUT")
        key = base64.b64decode(kv.get("key") or "").decode("utf-8", "surrogateescape")
        value = base64.b64decode(kv.get("value") or "") if kind == "PUT" else None
        return cls(kind, key, value, int(kv.get("mod_revision") or 0), int(kv.get("lease") or 0))


class _WatchStream(Protocol):
    """
    Reads the body of a watch response.
    """

    def __init__(self, watch: EtcdWatch) -> None:
        """
        @param watch: the watch the messages are for.
        """
        self._watch = watch
        self._parser = JSONObjectStream()

    def connectionMade(self) -> None:
        """
        The body starts: give the watch the transport to close it with.
        """
        self._watch.streamOpened(self.transport)

    def dataReceived(self, data: bytes) -> None:
        """
        @param data: the next chunk of the body.
        """
        try:
            messages = self._parser.feed(data)
        except JSONStreamError as e:
            self._watch.streamBroken(str(e))
            return
        for message in messages:
            if not self._watch.message(message):
                return

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        @param reason: why the body ended.
        """
        self._watch.streamClosed(reason)


@implementer(IEtcdWatch)
class EtcdWatch:
    """
    A watch of a key prefix, made by L{EtcdClient.watchPrefix
    <txgetty.discovery.etcd.EtcdClient.watchPrefix>}.

    @ivar prefix: the prefix watched.
    @ivar revision: the store revision when etcd created the watch (0
        until then).
    """

    log = Logger()

    def __init__(self, client: IEtcdWatchClient, prefix: str, onEvent: Callable[[WatchEvent], object]) -> None:
        """
        @param client: the client that made it (for URLs and error names).
        @param prefix: the prefix watched.
        @param onEvent: called with each event.
        """
        self.prefix = prefix
        self.revision = 0
        self._client = client
        self._onEvent = onEvent
        self._created: Deferred[EtcdWatch] = Deferred(self._cancelCreate)
        self._pending: Deferred[Any] | None = None
        self._transport: Any = None
        self._stopping = False
        self._ended = False
        self._result: Failure | None = None  # once ended: None when stopped, else why
        self._doneWaiters: list[Deferred[None]] = []
        self._closeWaiters: list[Deferred[None]] = []

    def __repr__(self) -> str:
        return f"<EtcdWatch {self.prefix!r} at {self._client.url}>"

    @property
    def active(self) -> bool:
        """
        @return: whether the watch is still delivering events.
        """
        return not self._ended and not self._stopping

    def whenCreated(self) -> Deferred[EtcdWatch]:
        """
        @return: the L{Deferred <twisted.internet.defer.Deferred>} firing with this watch once etcd created
            it (cancelling it stops the watch).
        """
        return self._created

    def whenDone(self) -> Deferred[None]:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{None} once stopped, or failing
            with why the watch ended otherwise.
        """
        if not self._ended:
            d: Deferred[None] = Deferred()
            self._doneWaiters.append(d)
            return d
        return succeed(None) if self._result is None else fail(self._result)

    def _cancelCreate(self, d: Deferred[Any]) -> None:
        """
        The caller cancelled the wait for the watch's creation: stop it.

        @param d: the cancelled L{Deferred <twisted.internet.defer.Deferred>}.
        """
        self.stop()

    def stop(self) -> Deferred[None]:
        """
        Cancel the watch; no event is delivered after this call.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once its connection is closed.
        """
        self._stopping = True
        if self._pending is not None:
            self._pending.cancel()
        if self._transport is None:
            self._end(None)
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._closeWaiters.append(d)
        self._transport.loseConnection()
        return d

    # -- from the client and the stream --------------------------------

    def attach(self, responded: Deferred[IResponse]) -> None:
        """
        Follow the request that opens the stream.

        @param responded: the agent's L{Deferred <twisted.internet.defer.Deferred>} for the response.
        """
        self._pending = responded
        responded.addCallbacks(self._responded, self._requestFailed)

    def _responded(self, response: IResponse) -> None:
        """
        @param response: the answer to the watch request.
        """
        self._pending = None
        if response.code == 200:
            response.deliverBody(_WatchStream(self))
            return
        self._pending = readBody(response)
        self._pending.addCallback(lambda body: self._client.decodeAnswer(_PATH, response.code, body))
        self._pending.addCallbacks(
            lambda _: self._end(Failure(EtcdProtocolError(self._client.url, _PATH, f"HTTP {response.code}"))),
            self._requestFailed,
        )

    def _requestFailed(self, failure: Failure) -> None:
        """
        @param failure: why the request got no stream.
        """
        self._pending = None
        if failure.check(CancelledError) or self._stopping:
            self._end(None)
        else:
            self._end(Failure(self._client.watchFailed(failure)))

    def streamOpened(self, transport: Any) -> None:
        """
        @param transport: the transport of the response body.
        """
        self._transport = transport
        if self._stopping or self._ended:
            transport.loseConnection()

    def streamBroken(self, reason: str) -> None:
        """
        The body is not a stream of JSON messages.

        @param reason: what was wrong.
        """
        self._end(Failure(EtcdProtocolError(self._client.url, _PATH, reason)))

    def streamClosed(self, reason: Failure | None) -> None:
        """
        The body ended (etcd went away, or L{stop} closed it).

        @param reason: why.
        """
        self._transport = None
        if self._stopping:
            self._end(None)
        else:
            self._end(Failure(EtcdUnavailableError(self._client.url, _PATH, "the watch stream was closed")))
        waiters, self._closeWaiters = self._closeWaiters, []
        for d in waiters:
            d.callback(None)

    def message(self, message: Any) -> bool:
        """
        Handle one message of the stream.

        @param message: the decoded JSON message.
        @return: whether the watch goes on.
        """
        if not self.active:
            return False
        if not isinstance(message, dict) or "error" in message:
            error = self._client.errorFromMessage(_PATH, message) if isinstance(message, dict) else None
            self._end(Failure(error or EtcdProtocolError(self._client.url, _PATH, f"not a message: {message!r}")))
            return False
        result = message.get("result") or {}
        header = result.get("header") or {}
        if result.get("canceled"):
            compacted = int(result.get("compact_revision") or 0)
            reason = str(result.get("cancel_reason") or "")
            self._end(Failure(EtcdWatchCanceledError(self._client.url, self.prefix, compacted, reason)))
            return False
        if result.get("created"):
            self.revision = int(header.get("revision") or 0)
            self._created.callback(self)
        for event in result.get("events") or []:
            if not self.active:
                return False
            self._deliver(WatchEvent.fromMessage(event))
        return self.active

    def _deliver(self, event: WatchEvent) -> None:
        """
        @param event: an event for C{onEvent}; what it raises is logged.
        """
        try:
            self._onEvent(event)
        except Exception:
            self.log.failure(
                "txgetty registry: the watch listener of {prefix!r} failed on {event!r}", level=LogLevel.error,
                prefix=self.prefix, event=event,
            )

    def _end(self, result: Failure | None) -> None:
        """
        End the watch (once): fire the waiters, close the stream.

        @param result: C{None} when stopped, else why it ended.
        """
        if self._ended:
            return
        self._ended = True
        self._result = result
        if not self._created.called:
            self._created.errback(result if result is not None else Failure(CancelledError()))
        waiters, self._doneWaiters = self._doneWaiters, []
        for d in waiters:
            if result is None:
                d.callback(None)
            else:
                d.errback(result)
        if self._transport is not None:
            self._transport.loseConnection()
