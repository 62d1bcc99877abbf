"""
How a session logs what went wrong, once per failure.

  - A routine end (the peer left or reset the connection, a timeout, a
    peer's bad bytes, a refused or failed connect, a TLS handshake that
    failed): one line at info level, with the error's type and message.
  - Anything else (an exception from a listener callback, from the
    new-session callback, from a reader that is not a L{CodecError}, from
    the framework itself): C{log.failure} at error level, with the
    traceback.

Both carry the fields C{session} (the session), C{peer} (its remote
address as text), C{callback} (the listener method, C{"newSession"},
C{"reader"}, or C{None} for an error the session detected itself),
C{listener} (the qualified class name of the object whose method failed,
or C{None}), C{error} (the exception's class name), C{why} (its message)
C{outcome} (what the session does about it) and C{reason}
(C{"ERROR: WHY"}, the stable field of docs/observability.md, "Logs").  See
docs/contracts.md, "Logging".
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectError, ConnectionClosed
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ..transports.addresses import formatAddress
from ..errors import (
    CodecError,
    ConnectionClosedLocally,
    ConnectTimeoutError,
    DeadPeerError,
    OutboundOverflowError,
    SessionRefusedError,
    SessionTimeoutError,
    TLSHandshakeError,
    WebSocketClosedError,
)

_log = Logger(namespace="txgetty.session")

#: Passed as the C{callback} of an error event whose failure was logged
#: already (a reader's exception, logged before it is wrapped).
ALREADY_LOGGED = "(already logged)"

_LISTENER: Any = object()

#: The errors that are a routine end of a session, not a bug: they are
#: logged as one info line, without a traceback.  Everything else is
#: logged at error level with its traceback.
ROUTINE_ERRORS: tuple[type[BaseException], ...] = (
    CodecError,              # the peer's bad bytes (also raised by a handler to reject them)
    SessionTimeoutError,     # readIdleTimeout, packetTimeout, openTimeout, a silent UDP peer
    ConnectionClosed,        # the peer closed or reset the connection (ConnectionDone/Lost)
    ConnectError,            # connection refused, DNS, no route (clients; ICMP on UDP)
    ConnectTimeoutError,
    ConnectionClosedLocally,
    SessionRefusedError,
    TLSHandshakeError,
    OutboundOverflowError,   # the peer does not read
    DeadPeerError,           # a WebSocket peer stopped answering pings
    WebSocketClosedError,
)


def isRoutine(failure: Failure) -> bool:
    """
    @param failure: why a session ends, or what a callback raised.
    @return: whether it is a routine end (logged at info, no traceback).
    """
    return isinstance(failure.value, ROUTINE_ERRORS)


def qualifiedName(obj: Any) -> str | None:
    """
    @param obj: a listener or a reader, or C{None}.
    @return: the qualified name of its class (C{myapp.chat.Chat}), or
        C{None}.
    """
    if obj is None:
        return None
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def logSessionFailure(
    session: Any,
    failure: Failure,
    outcome: str,
    callback: str | None = None,
    owner: Any = _LISTENER,
    routine: bool | None = None,
) -> None:
    """
    Log one failure of a session: at info without a traceback if it is
    routine, else at error level with the traceback.

    @param session: the session.
    @param failure: what happened.
    @param outcome: what the session does about it (for the message).
    @param callback: the method that raised (C{"onMessage"}, ...), or
        C{None} if the session detected the error itself.
    @param owner: the object whose C{callback} raised (the reader), or
        C{None} for none; by default the session's listener.
    @param routine: force the classification (C{None}: L{isRoutine}).
    """
    if owner is _LISTENER:
        owner = getattr(session, "listener", None) if callback is not None else None
    name = qualifiedName(owner)
    if callback is None:
        source = ""
    elif name is None:
        source = f"{callback} raised "
    else:
        source = f"{name}.{callback} raised "
    fields = dict(
        session=session, peer=formatAddress(getattr(session, "remoteAddress", None)),
        callback=callback, listener=name, error=type(failure.value).__name__,
        why=failure.getErrorMessage().rstrip("."), outcome=outcome, source=source,
    )
    fields["reason"] = f"{fields['error']}: {fields['why']}"
    if isRoutine(failure) if routine is None else routine:
        _log.info("txgetty: {session!r}: {source}{error}: {why}; {outcome}", **fields)
    else:
        _log.failure("txgetty: {session!r}: {source}{error}: {why}; {outcome}", failure,
                     level=LogLevel.error, **fields)
