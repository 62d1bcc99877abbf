"""
What the discovery services share: a transition table applied to the
service, a clock, one request in flight at a time whose outcome becomes an
event, and the backoff between attempts while etcd is unavailable.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ..client.reconnect import ReconnectPolicy
from ..statemachine import State
from .errors import EtcdError
from ..interfaces import IEtcdClient

#: The first state of every discovery service.
STOPPED = State("STOPPED")

#: The waits between attempts while etcd is unavailable.
DEFAULT_RETRY = ReconnectPolicy(initialDelay=0.5, factor=2.0, maxDelay=5.0, jitter=0.1)


class RetryingService(Service):
    """
    A service driven by a transition table that talks to etcd.

    A subclass's table (a L{Table <txgetty.statemachine.Table>} whose
    C{fire} is the subclass's C{_fire}) starts in L{STOPPED}, uses the
    events C{fail} (a request failed) and C{retry} (the backoff ended), and
    may have the action L{scheduleRetry}.

    @ivar client: the etcd client.
    """

    log = Logger()
    #: Apply one event to the subclass's table (made by the table).
    _fire: Callable[..., bool]

    def __init__(
        self,
        client: IEtcdClient,
        clock: IReactorTime | None,
        retryPolicy: ReconnectPolicy,
        rng: random.Random | None,
    ) -> None:
        """
        @param client: the etcd client.
        @param clock: the reactor's time (default: the global reactor).
        @param retryPolicy: the waits between attempts (only its delays are
            used: it never gives up).
        @param rng: the random source of the backoff's jitter.
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self.client = client
        self._clock: IReactorTime = clock  # type: ignore[assignment]
        self._retryPolicy = retryPolicy
        self._rng = rng or random.Random()
        self._state: State = STOPPED
        self._failures = 0
        self._downSince = 0.0
        self._lastError: BaseException | None = None
        self._timer: IDelayedCall | None = None
        self._inflight: Deferred[Any] | None = None

    @property
    def state(self) -> str:
        """
        @return: the name of the current state (see the subclass's
            C{TRANSITIONS}).
        """
        return self._state.name

    def _follow(self, d: Deferred[Any], success: Callable[[Any], str]) -> None:
        """
        Make the outcome of a request an event: C{success(result)} names
        the event of a result, a failure is C{fail}, a cancellation (by a
        stop) is no event.

        @param d: the request.
        @param success: from its result to an event name.
        """
        self._inflight = d

        def succeeded(result: Any) -> None:
            self._inflight = None
            self._fire(success(result))

        d.addCallbacks(succeeded, self._failed)

    def _failed(self, failure: Failure) -> None:
        """
        @param failure: why a request failed; an error that is not an
            L{EtcdError} is a bug, logged with its traceback.
        """
        self._inflight = None
        if failure.check(CancelledError):
            return
        if not failure.check(EtcdError):
            self.log.failure("txgetty registry: unexpected error in {component!r}", failure, LogLevel.error,
                             component=self, error=type(failure.value).__name__)
        self._lastError = failure.value
        self._fire("fail")

    def _markDown(self) -> BaseException | None:
        """
        Note when the outage began.

        @return: the error that began it.
        """
        self._downSince = self._clock.seconds()
        return self._lastError

    def _downFor(self) -> float:
        """
        @return: the seconds since the outage began.
        """
        return self._clock.seconds() - self._downSince

    def scheduleRetry(self) -> None:
        """
        Wait (growing with each failure), then fire C{retry}.
        """
        self._failures += 1
        delay = self._retryPolicy.delay(self._failures, self._rng)
        self._timer = self._clock.callLater(delay, self._fire, "retry")

    def _cancelPending(self) -> None:
        """
        Cancel the timer and the request in flight.
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._inflight is not None:
            self._inflight.cancel()
        self._inflight = None
