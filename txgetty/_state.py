"""
The session life cycle as an explicit transition table.

States::

  NEW ──connect──> OPENING ──openOk──> OPEN ──close──> CLOSING ──lost──> CLOSED
                                         └─error─> ERRORING ─close─┘  (onError may still write)
   │                 ▲ │  └─close─> OPENING_CLOSE ──openOk──> CLOSING     (onClose)
   └─connectTLS─> HANDSHAKING ──handshake─┘                      │
                     │ lost: DEAD (onError)   OPEN ──lost──> CLOSED (onError if abnormal)
  refuse / openFail / openTimeout / close before open ──> ABORTING ──lost──> DEAD

A session counts as opened once C{onOpen} succeeded; only opened sessions
reach C{CLOSED} (and get C{onClose}); the others end in C{DEAD}.
"""

from __future__ import annotations


class State:
    """
    One state of the session life cycle.

    @ivar name: the state's name.
    @ivar writable: whether writes are accepted in it.
    @ivar closed: whether the session is closing or closed in it.
    @ivar final: whether the connection is gone in it.
    """

    __slots__ = ("name", "writable", "closed", "final")

    def __init__(
        self, name: str, writable: bool = False, closed: bool = False, final: bool = False
    ) -> None:
        """
        @param name: the state's name.
        @param writable: whether writes are accepted.
        @param closed: whether the session is closing or closed.
        @param final: whether the connection is gone.
        """
        self.name = name
        self.writable = writable
        self.closed = closed
        self.final = final

    def __repr__(self) -> str:
        return self.name


NEW = State("NEW")
HANDSHAKING = State("HANDSHAKING", writable=True)
OPENING = State("OPENING", writable=True)
OPENING_CLOSE = State("OPENING_CLOSE", closed=True)
OPEN = State("OPEN", writable=True)
ERRORING = State("ERRORING", writable=True, closed=True)
CLOSING = State("CLOSING", closed=True)
CLOSED = State("CLOSED", closed=True, final=True)
ABORTING = State("ABORTING", closed=True)
DEAD = State("DEAD", closed=True, final=True)

STATES = (NEW, HANDSHAKING, OPENING, OPENING_CLOSE, OPEN, ERRORING, CLOSING, CLOSED, ABORTING, DEAD)

#: connect: transport up, no TLS; connectTLS: transport up, TLS handshake to
#: come; refuse: the new-session callback refused; handshake: TLS done;
#: openOk/openFail: onOpen's outcome; openTimeout: not open after
#: openTimeout; close: close() called; error: a codec, timeout or handler
#: error; lost: the transport is gone.
EVENTS = (
    "connect",
    "connectTLS",
    "refuse",
    "handshake",
    "openOk",
    "openFail",
    "openTimeout",
    "close",
    "error",
    "lost",
)

#: (state, event) -> (next state, name of the Session method to run or None).
#: Every pair not listed keeps the state and does nothing (an idempotent
#: close, a late onOpen result after the connection is gone, ...).
TRANSITIONS: dict[tuple[State, str], tuple[State, str | None]] = {
    (NEW, "connect"): (OPENING, "_doConfigureAndOpen"),
    (NEW, "connectTLS"): (HANDSHAKING, "_doConfigure"),
    (NEW, "close"): (DEAD, "_doGone"),
    (NEW, "lost"): (DEAD, "_doGone"),
    (HANDSHAKING, "refuse"): (ABORTING, "_doRefuse"),
    (HANDSHAKING, "handshake"): (OPENING, "_doOpen"),
    (HANDSHAKING, "close"): (ABORTING, "_doAbort"),
    (HANDSHAKING, "openTimeout"): (ABORTING, "_doOpenTimeout"),
    (HANDSHAKING, "lost"): (DEAD, "_doHandshakeFailed"),
    (OPENING, "refuse"): (ABORTING, "_doRefuse"),
    (OPENING, "openOk"): (OPEN, "_doStart"),
    (OPENING, "openFail"): (ABORTING, "_doOpenFailed"),
    (OPENING, "close"): (OPENING_CLOSE, "_doLoseConnection"),
    (OPENING, "openTimeout"): (ABORTING, "_doOpenTimeout"),
    (OPENING, "error"): (ABORTING, "_doOpenFailed"),
    (OPENING, "lost"): (DEAD, "_doCancelOpen"),
    (OPENING_CLOSE, "openOk"): (CLOSING, "_doOpenedClosing"),
    (OPENING_CLOSE, "openFail"): (ABORTING, "_doOpenFailed"),
    (OPENING_CLOSE, "lost"): (DEAD, "_doCancelOpen"),
    (OPENING_CLOSE, "openTimeout"): (ABORTING, "_doOpenTimeout"),
    (OPEN, "close"): (CLOSING, "_doClose"),
    (OPEN, "error"): (ERRORING, "_doFail"),
    (OPEN, "lost"): (CLOSED, "_doLost"),
    (ERRORING, "close"): (CLOSING, "_doLoseConnection"),
    (ERRORING, "lost"): (CLOSED, "_doClosed"),
    (CLOSING, "lost"): (CLOSED, "_doClosed"),
    (ABORTING, "lost"): (DEAD, "_doGone"),
}
