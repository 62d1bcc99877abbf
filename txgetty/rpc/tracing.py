"""
W3C trace context (U{https://www.w3.org/TR/trace-context/}) for RPC calls,
and the optional OpenTelemetry spans.

A request's head map may carry C{traceparent} and C{tracestate}.  The server
parses them (an invalid C{traceparent} is ignored, with its C{tracestate}),
gives the call a span id of its own, and passes the context on to the calls
an L{RpcClient <txgetty.rpc.client.RpcClient>} makes from inside the
method: same trace id, the call's span id as parent id.

When C{opentelemetry-api} is installed (the C{otel} extra) and a tracer
provider is set, the server makes a C{SERVER} span per call and the client a
C{CLIENT} span per call, and the span ids are those of these spans;
otherwise nothing of OpenTelemetry runs.  See docs/observability.md, "Trace
context".
"""

from __future__ import annotations

import os
import re
from time import monotonic as _monotonic
from typing import Any, Mapping

try:
    from opentelemetry import context as _otelContext
    from opentelemetry import trace as _otelTrace
except ImportError:  # the otel extra is not installed
    _otelTrace = None  # type: ignore[assignment]
    _otelContext = None  # type: ignore[assignment]

from twisted.python.failure import Failure

from .._version import __version__

#: The head map keys of the trace context.
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

#: version 00: C{00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>}.
#: Later versions may append fields after a C{-}: the first four are read.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.ASCII | re.DOTALL)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
#: The longest C{tracestate} passed on (W3C: 32 list members of at most
#: 256 characters each, and commas).
MAX_TRACESTATE = 32 * 257


class TraceParent:
    """
    A valid C{traceparent}.

    @ivar traceId: the trace id, 32 lowercase hex digits, not all zero.
    @ivar parentId: the caller's span id, 16 lowercase hex digits, not all
        zero.
    @ivar flags: the trace flags, 2 lowercase hex digits (C{"01"}: sampled).
    """

    __slots__ = ("traceId", "parentId", "flags")

    def __init__(self, traceId: str, parentId: str, flags: str) -> None:
        """
        @param traceId: the trace id.
        @param parentId: the parent id.
        @param flags: the flags.
        """
        self.traceId, self.parentId, self.flags = traceId, parentId, flags

    def __str__(self) -> str:
        """
        @return: the version 00 C{traceparent} text.
        """
        return f"00-{self.traceId}-{self.parentId}-{self.flags}"

    @property
    def sampled(self) -> bool:
        """
        Whether the caller records the trace (flag bit 0).
        """
        return bool(int(self.flags, 16) & 1)


def parseTraceparent(value: Any) -> TraceParent | None:
    """
    Read a C{traceparent} as the W3C trace context says a receiver does.

    @param value: a C{traceparent} head entry.
    @return: its L{TraceParent}, or C{None} if it is not valid: not text;
        not C{version-traceid-parentid-flags} in lowercase hex of 2, 32, 16
        and 2 digits; version C{ff}; version C{00} with anything after the
        flags; a trace id or parent id of all zeros.  A version above
        C{00} is read as C{00} (its first four fields).
    """
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, traceId, parentId, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if traceId == _ZERO_TRACE or parentId == _ZERO_SPAN:
        return None
    return TraceParent(traceId, parentId, flags)


def newSpanId() -> str:
    """
    @return: a random span id: 16 lowercase hex digits, not all zero.
    """
    while True:
        span = os.urandom(8).hex()
        if span != _ZERO_SPAN:
            return span


def newTraceId() -> str:
    """
    @return: a random trace id: 32 lowercase hex digits, not all zero.
    """
    while True:
        trace = os.urandom(16).hex()
        if trace != _ZERO_TRACE:
            return trace


#: Seconds between two looks for a tracer provider while none is set.
PROVIDER_RECHECK = 1.0


class _TracerCache:
    """
    What L{activeTracer} answered last: asking OpenTelemetry for its
    provider reads the environment each time (about a sixth of a plain
    call's server CPU), so the answer is kept: a real provider's tracer for
    good (OpenTelemetry lets the global provider be set only once), "none
    set" for L{PROVIDER_RECHECK} seconds.  A different
    C{get_tracer_provider} (a test's patch) is asked again at once.

    @ivar getter: the C{get_tracer_provider} the answer came from.
    @ivar tracer: the tracer, or C{None}.
    @ivar checked: when it was asked (C{time.monotonic()}).
    """

    __slots__ = ("getter", "tracer", "checked")

    def __init__(self) -> None:
        self.getter: Any = None
        self.tracer: Any = None
        self.checked = 0.0

    def ask(self, getter: Any, now: float) -> Any:
        """
        Ask OpenTelemetry for its tracer provider and keep the answer.

        @param getter: its C{get_tracer_provider}.
        @param now: C{time.monotonic()}.
        @return: the tracer, or C{None} when no tracer provider is set.
        """
        provider = getter()
        if isinstance(provider, (_otelTrace.ProxyTracerProvider, _otelTrace.NoOpTracerProvider)):
            tracer = None
        else:
            tracer = provider.get_tracer("txgetty", __version__)
        self.getter, self.tracer, self.checked = getter, tracer, now
        return tracer


_TRACERS = _TracerCache()


def activeTracer() -> Any:
    """
    @return: txgetty's OpenTelemetry tracer, or C{None} when
        opentelemetry-api is not installed or no tracer provider is set
        (looked for at most once a second while none is).  Cheap enough to
        ask on every call: one function call and a clock read.
    """
    if _otelTrace is None:
        return None
    cache = _TRACERS
    tracer = cache.tracer
    getter = _otelTrace.get_tracer_provider
    if getter is cache.getter:
        if tracer is not None:
            return tracer
        now = _monotonic()
        if now - cache.checked < PROVIDER_RECHECK:
            return None
    else:
        now = _monotonic()
    return cache.ask(getter, now)


def _otelParent(parent: TraceParent | None, state: str | None) -> Any:
    """
    @return: an OpenTelemetry context whose span is the remote C{parent},
        or C{None} (no parent: a new trace).
    """
    if parent is None:
        return None
    traceState = _otelTrace.TraceState.from_header([state]) if state else None
    spanContext = _otelTrace.SpanContext(int(parent.traceId, 16), int(parent.parentId, 16), is_remote=True,
                                         trace_flags=_otelTrace.TraceFlags(int(parent.flags, 16)),
                                         trace_state=traceState)
    return _otelTrace.set_span_in_context(_otelTrace.NonRecordingSpan(spanContext))


def _fromSpan(span: Any) -> tuple[str, str, str, str | None]:
    """
    @return: the trace id, span id, flags and tracestate of an
        OpenTelemetry span.
    """
    context = span.get_span_context()
    state = context.trace_state.to_header() if context.trace_state else None
    return (format(context.trace_id, "032x"), format(context.span_id, "016x"), format(context.trace_flags, "02x"),
            state or None)


def _endSpan(span: Any, outcome: Any) -> None:
    """
    End an OpenTelemetry span, with an error status if the call failed.

    @param outcome: the call's result, or a L{Failure
        <twisted.python.failure.Failure>}.
    """
    if isinstance(outcome, Failure):
        value = outcome.value
        span.set_attribute("error.type", type(value).__name__)
        remoteType = getattr(value, "type", None)
        if isinstance(remoteType, str):
            span.set_attribute("rpc.txgetty.error_type", remoteType)
        span.set_status(_otelTrace.Status(_otelTrace.StatusCode.ERROR, f"{type(value).__name__}: {value}"[:512]))
    span.end()


def _attributes(service: str, method: str) -> dict[str, str]:
    """
    @return: the OpenTelemetry RPC attributes of a call.
    """
    return {"rpc.system": "txgetty", "rpc.service": service, "rpc.method": method}


class CallTrace:
    """
    The trace context of a call a server runs.

    @ivar traceparent: the request's valid C{traceparent}, or C{None}.
    @ivar tracestate: its C{tracestate} (only with a valid C{traceparent}),
        or C{None}.
    @ivar traceId: the call's trace id (the request's, or, without one, a
        new trace's from the OpenTelemetry server span).
    @ivar parentId: the caller's span id, or C{None} (a new trace).
    @ivar spanId: the call's own span id: the parent id of the calls made
        from inside the method.
    @ivar flags: the trace flags passed on.
    @ivar span: the OpenTelemetry server span, or C{None}.
    """

    __slots__ = ("traceparent", "tracestate", "traceId", "parentId", "spanId", "flags", "span", "_token")

    def __init__(self, parent: TraceParent | None, tracestate: str | None, span: Any = None) -> None:
        """
        @param parent: the request's trace parent.
        @param tracestate: its trace state.
        @param span: the OpenTelemetry server span, if one was started.
        """
        self.traceparent = str(parent) if parent is not None else None
        self.tracestate = tracestate
        self.parentId = parent.parentId if parent is not None else None
        self.span = span
        self._token: Any = None
        if span is not None:
            self.traceId, self.spanId, self.flags, state = _fromSpan(span)
        else:
            assert parent is not None
            self.traceId, self.spanId, self.flags = parent.traceId, newSpanId(), parent.flags

    def childHead(self) -> dict[str, str]:
        """
        @return: the head entries a call made from inside the method sends
            (without an OpenTelemetry client span): C{traceparent} with this
            trace id and this call's span id as parent id, and the
            C{tracestate}, if any.
        """
        head = {TRACEPARENT: f"00-{self.traceId}-{self.spanId}-{self.flags}"}
        if self.tracestate:
            head[TRACESTATE] = self.tracestate
        return head

    def attach(self) -> None:
        """
        Make the OpenTelemetry server span the current span (in the running
        context: the method's), if there is one.
        """
        if self.span is not None:
            self._token = _otelContext.attach(_otelTrace.set_span_in_context(self.span))

    def detach(self) -> None:
        """
        Undo L{attach}.
        """
        if self._token is not None:
            token, self._token = self._token, None
            _otelContext.detach(token)

    def finish(self, outcome: Any) -> None:
        """
        End the OpenTelemetry server span, if there is one.

        @param outcome: the call's result, or its L{Failure
            <twisted.python.failure.Failure>}.
        """
        if self.span is not None:
            span, self.span = self.span, None
            _endSpan(span, outcome)


def serverTrace(head: Mapping[str, str], tracer: Any = False) -> CallTrace | None:
    """
    @param head: a request's head map.
    @param tracer: the L{activeTracer} if the caller asked already (C{None}
        included); by default it is asked here.
    @return: the trace context of the call: from its valid C{traceparent},
        with an OpenTelemetry server span when a tracer provider is set (a
        new trace without a valid C{traceparent}); C{None} when it carries
        none and OpenTelemetry is not in use.
    """
    parent = parseTraceparent(head.get(TRACEPARENT))
    state = _traceState(head.get(TRACESTATE)) if parent is not None else None
    if tracer is False:
        tracer = activeTracer()
    if tracer is None:
        return CallTrace(parent, state) if parent is not None else None
    service, method = head.get("service", ""), head.get("method", "")
    span = tracer.start_span(f"{service}/{method}", context=_otelParent(parent, state),
                             kind=_otelTrace.SpanKind.SERVER, attributes=_attributes(service, method))
    return CallTrace(parent, state, span)


class TracerWatch:
    """
    When one server looks for an OpenTelemetry tracer: while none is set, not
    again for L{PROVIDER_RECHECK} seconds of its reactor's time, which keeps
    the question off the path of every call (the caller tests
    C{quietFrom <= now < quietUntil} itself, inline).

    @ivar quietFrom: since when no tracer was found (reactor seconds).
    @ivar quietUntil: until when not to look again.
    """

    __slots__ = ("quietFrom", "quietUntil")

    def __init__(self) -> None:
        self.quietFrom = self.quietUntil = 0.0

    def trace(self, head: Mapping[str, str], now: float) -> CallTrace | None:
        """
        @param head: the head map of a call without C{traceparent}.
        @param now: the reactor's time.
        @return: its trace context with an OpenTelemetry server span, or
            C{None} while no tracer provider is set.
        """
        tracer = activeTracer()
        if tracer is None:
            self.quietFrom, self.quietUntil = now, now + PROVIDER_RECHECK
            return None
        return serverTrace(head, tracer)


def refusedSpan(head: Mapping[str, str], errorType: str, message: str, known: bool) -> None:
    """
    Record the OpenTelemetry server span of a call the server refused
    without running it (C{NoSuchService}, C{ServerBusy}, ...), when a tracer
    provider is set: an C{ERROR} span with C{error.type} the refusal's type,
    a child of the request's C{traceparent} if it carries a valid one.

    @param head: the request's head map.
    @param errorType: the error type it was answered with.
    @param message: the error message.
    @param known: whether the head names a registered method; if not, the
        span is named C{_other/_other} (a name the caller chose is not a span
        name), with the names given in its attributes.
    """
    tracer = activeTracer()
    if tracer is None:
        return
    parent = parseTraceparent(head.get(TRACEPARENT))
    state = _traceState(head.get(TRACESTATE)) if parent is not None else None
    service, method = head.get("service", ""), head.get("method", "")
    name = f"{service}/{method}" if known else "_other/_other"
    span = tracer.start_span(name, context=_otelParent(parent, state), kind=_otelTrace.SpanKind.SERVER,
                             attributes=_attributes(str(service), str(method)))
    span.set_attribute("error.type", errorType)
    span.set_status(_otelTrace.Status(_otelTrace.StatusCode.ERROR, f"{errorType}: {message}"[:512]))
    span.end()


def _traceState(value: Any) -> str | None:
    """
    @return: a C{tracestate} to pass on: text of at most L{MAX_TRACESTATE}
        characters, else C{None}.
    """
    if isinstance(value, str) and value and len(value) <= MAX_TRACESTATE:
        return value
    return None


class ClientTrace:
    """
    The trace context a client call sends, and its OpenTelemetry client
    span.

    @ivar head: the head entries to send (C{traceparent}, C{tracestate}).
    @ivar span: the OpenTelemetry client span, or C{None}.
    """

    __slots__ = ("head", "span")

    def __init__(self, head: dict[str, str], span: Any = None) -> None:
        """
        @param head: the head entries to send.
        @param span: the client span.
        """
        self.head, self.span = head, span

    def finish(self, outcome: Any) -> Any:
        """
        End the client span (a callback of the call's Deferred).

        @param outcome: the call's result or failure.
        @return: C{outcome}.
        """
        if self.span is not None:
            span, self.span = self.span, None
            _endSpan(span, outcome)
        return outcome


def clientTrace(name: str, traceparent: str | None, tracestate: str | None, running: CallTrace | None) -> \
        ClientTrace | None:
    """
    The trace context of a client call.

    @param name: the call's C{Service.method}.
    @param traceparent: an explicit C{traceparent} of the caller's, or
        C{None}.
    @param tracestate: an explicit C{tracestate}, or C{None}.
    @param running: the trace of the RPC call whose method makes this call,
        or C{None}.
    @return: what to send and the client span; C{None} when there is no
        trace context to send and OpenTelemetry is not in use.
    @raise ValueError: C{traceparent} is given and not valid.
    """
    parent: TraceParent | None = None
    if traceparent is not None:
        parent = parseTraceparent(traceparent)
        if parent is None:
            raise ValueError(f"traceparent {traceparent!r} is not a W3C trace context traceparent: send "
                             f"'00-<32 hex digits trace id>-<16 hex digits parent id>-<2 hex digits flags>', "
                             f"lowercase, ids not all zeros")
        state = _traceState(tracestate)
        head = {TRACEPARENT: str(parent)}
        if state:
            head[TRACESTATE] = state
    elif running is not None:
        head = running.childHead()
        state = running.tracestate
    else:
        head, state = {}, None
    tracer = activeTracer()
    if tracer is None:
        return ClientTrace(head) if head else None
    if parent is not None:
        context = _otelParent(parent, state)
    elif running is not None and running.span is None:
        context = _otelParent(parseTraceparent(head[TRACEPARENT]), state)
    else:
        context = None  # the current span: the server span of the running call, or the caller's own
    service, _, method = name.partition(".")
    span = tracer.start_span(f"{service}/{method}", context=context, kind=_otelTrace.SpanKind.CLIENT,
                             attributes=_attributes(service, method))
    traceId, spanId, flags, spanState = _fromSpan(span)
    head = {TRACEPARENT: f"00-{traceId}-{spanId}-{flags}"}
    if spanState or state:
        head[TRACESTATE] = spanState or state  # type: ignore[assignment]
    return ClientTrace(head, span)


#: Whether opentelemetry-api is installed (a tracer provider may be set).
OTEL = _otelTrace is not None
