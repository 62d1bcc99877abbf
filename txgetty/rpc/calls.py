"""
One RPC call on the server side: what hooks and methods learn about it
(L{CallInfo}, L{currentCall}, L{runningTrace}), the state of an unfinished
one (L{PendingCall}), its deadline (C{timeout-ms}, L{parseDeadline}), the
fields of its log events (L{callFields}) and the head map of its error
response (L{errorHead}).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

from twisted.internet.defer import Deferred

from ..transports.addresses import formatAddress
from . import frame as F
from .serializers import COMPRESSORS, NONE, compressor
from .tracing import TRACEPARENT, CallTrace, parseTraceparent

#: The call the running RPC method serves: C{(frame, session, started,
#: trace)}, set by the server around each method call (see L{currentCall}).
CURRENT_CALL: ContextVar[tuple] = ContextVar("txgetty.rpc.currentCall")


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


class PendingCall:
    """
    An unfinished call of a connection: its Deferred and deadline timer.

    @ivar cancelled: this side cancelled it (deadline, cancel frame, lost
        connection): no answer is due.
    @ivar expired: it was cancelled because its deadline passed.
    """

    __slots__ = ("deferred", "timer", "frame", "info", "cancelled", "expired")

    def __init__(self, deferred: Deferred, frame: F.Frame, info: CallInfo | None) -> None:
        self.deferred, self.frame, self.info = deferred, frame, info
        self.timer: Any = None
        self.cancelled = self.expired = False

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
        frame, session, started, trace = CURRENT_CALL.get()
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
        return CURRENT_CALL.get()[3]
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
    return dict(call=describeCall(frame), session=session, peer=formatAddress(getattr(session, "remoteAddress", None)),
                service=head.get(F.SERVICE), method=head.get(F.METHOD),
                requestId=frame.requestId if frame.type == F.REQUEST else None, traceId=traceId)


def describeCall(frame: F.Frame) -> str:
    """
    @param frame: a request or oneway that names a registered method.
    @return: C{"Service.method request #ID"} or C{"Service.method oneway"},
        for log lines.
    """
    head = frame.head
    kind = f"request #{frame.requestId}" if frame.type == F.REQUEST else "oneway"
    return f"{head.get(F.SERVICE)}.{head.get(F.METHOD)} {kind}"


def acceptedCompressor(frame: F.Frame) -> int:
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
DEADLINES: dict[str, float] = {}
deadlineOf = DEADLINES.get


def parseDeadline(value: str) -> float | None:
    """
    @param value: a C{timeout-ms} head entry.
    @return: seconds until the call's deadline, 0.0 for none (a value of
        zero), or C{None} if the value is not of the grammar (the call is
        refused with C{BadRequest}).
    """
    if _TIMEOUT_MS.fullmatch(value) is None:
        return None
    seconds = float(value) / 1000.0
    if len(DEADLINES) >= 4096:
        DEADLINES.clear()
    DEADLINES[value] = seconds
    return seconds


def compressorFor(key: str | int) -> int:
    """
    @param key: a compressor name or code.
    @return: its code.
    """
    return compressor(key).code


def quiet(d: Deferred) -> Deferred:
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
