"""
Session settings: their defaults, and the checks that turn a bad value into a
L{ConfigError} naming the setting.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Callable

from .errors import ConfigError

#: getty's demo port for the hello service.
DEFAULT_PORT = 8090
DEFAULT_MAX_MSG_LEN = 1024 * 1024
DEFAULT_CRON_PERIOD = 60.0
DEFAULT_WAIT_TIME = 3.0
DEFAULT_PACKET_TIMEOUT = 10.0
DEFAULT_OPEN_TIMEOUT = 10.0
DEFAULT_KEEPALIVE_PERIOD = 180.0
DEFAULT_WHEEL_TICK = 0.1
DEFAULT_WRITE_HIGH_MARK = 64 * 1024
DEFAULT_WRITE_LOW_MARK = 32 * 1024
DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024
DEFAULT_BACKLOG_HIGH_MARK = 256
DEFAULT_BACKLOG_LOW_MARK = 64
#: A server session's readIdleTimeout: 5 cron periods, so a client that sends
#: a heartbeat on each onCron (getty's way) survives 4 lost ones; RPC clients
#: send one every 15 s (the RPC server's own idle limit is 300 s too).
DEFAULT_READ_IDLE_TIMEOUT = 300.0
#: A server session's firstPacketTimeout, as nginx's client_header_timeout.
DEFAULT_FIRST_PACKET_TIMEOUT = 60.0
#: Seconds output may wait with the peer taking none of it, as nginx's
#: send_timeout.
DEFAULT_WRITE_TIMEOUT = 60.0
#: Packets one session hands to onMessage per reactor turn before the others
#: get theirs (see benchmarks/fairness.py).
DEFAULT_MAX_PACKETS_PER_TURN = 256
#: Sessions (connections) one listener holds at most; UDP's maxPeers too.
DEFAULT_MAX_SESSIONS = 10_000
#: The listen backlog asked for: the kernel clamps it to its maximum
#: (net.core.somaxconn on Linux, 4096 since Linux 5.4), as Go and netty use.
DEFAULT_LISTEN_BACKLOG = 65535

#: Who made a session: a L{Server <txgetty.Server>} ("server": its
#: port may face the internet) or anything else ("client": a Client, a
#: session made by hand), for the settings of L{ROLE_DEFAULTS}.
ROLES = ("server", "client")

#: The settings whose default depends on the role: a L{SessionConfig} holds
#: C{None} for them unless given, and each session takes its role's value.
#: A client must not close an idle pool that its server may keep silent.
ROLE_DEFAULTS: dict[str, dict[str, float]] = {
    "readIdleTimeout": {"server": DEFAULT_READ_IDLE_TIMEOUT, "client": 0.0},
    "firstPacketTimeout": {"server": DEFAULT_FIRST_PACKET_TIMEOUT, "client": 0.0},
}

HANDLER_ERROR_POLICIES = ("close", "continue")


def _number(name: str, value: Any, *, positive: bool, upper: float | None = None) -> float:
    """
    Check a number of seconds.

    @param name: the setting's name, for the message.
    @param value: the value to check.
    @param positive: whether 0 is refused.
    @param upper: an optional inclusive upper bound.
    @return: C{value} as a float.
    @raise ConfigError: the value is not a number or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if value != value or value < 0 or (positive and value == 0):
        need = "greater than 0" if positive else "0 or more"
        raise ConfigError(f"{name} must be {need}, got {value!r}")
    if upper is not None and value > upper:
        raise ConfigError(f"{name} must be at most {upper}, got {value!r}")
    return float(value)


def checkMaxMsgLen(value: Any) -> int:
    """
    @param value: a proposed C{maxMsgLen}.
    @return: the value.
    @raise ConfigError: it is not a positive integer.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"maxMsgLen must be a positive number of bytes, got {value!r}")
    return value


def checkSeconds(name: str, positive: bool) -> Callable[[Any], float]:
    """
    @param name: the setting's name, for the message.
    @param positive: whether 0 is refused (otherwise 0 means "off").
    @return: a checker for a number of seconds.
    """

    def check(value: Any) -> float:
        return _number(name, value, positive=positive)

    return check


checkCronPeriod = checkSeconds("cronPeriod", positive=True)
checkWaitTime = checkSeconds("waitTime", positive=False)
checkReadIdleTimeout = checkSeconds("readIdleTimeout", positive=False)
checkPacketTimeout = checkSeconds("packetTimeout", positive=False)
checkOpenTimeout = checkSeconds("openTimeout", positive=False)
checkFirstPacketTimeout = checkSeconds("firstPacketTimeout", positive=False)
checkWriteTimeout = checkSeconds("writeTimeout", positive=False)


def checkKeepAlivePeriod(value: Any) -> float:
    """
    @param value: a proposed C{keepAlivePeriod} in seconds.
    @return: the value as a float.
    @raise ConfigError: it is not a positive number, or above the kernel's
        limit of 32767 seconds.
    """
    return _number("keepAlivePeriod", value, positive=True, upper=32767)


def checkCount(name: str, positive: bool = True) -> Callable[[Any], int]:
    """
    @param name: the setting's name, for the message.
    @param positive: whether 0 is refused.
    @return: a checker for a whole number of bytes or packets.
    """

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if positive else 0):
            need = "a positive integer" if positive else "an integer, 0 or more"
            raise ConfigError(f"{name} must be {need}, got {value!r}")
        return value

    return check


#: (lower, upper) pairs of settings where lower <= upper must hold.
ORDERED_PAIRS = (
    ("writeLowMark", "writeHighMark"),
    ("writeHighMark", "maxPendingBytes"),
    ("backlogLowMark", "backlogHighMark"),
)


def checkOrder(name: str, value: Any, current: Callable[[str], Any]) -> None:
    """
    Check that a new value keeps every low mark at or below its high mark.

    @param name: the setting being changed.
    @param value: its new value.
    @param current: gives the current value of another setting.
    @raise ConfigError: the new value would cross its partner; the message
        says which one to change first.
    """
    for low, high in ORDERED_PAIRS:
        if name == low and value > current(high):
            raise ConfigError(f"{low} ({value!r}) must not exceed {high} ({current(high)!r}); raise {high} first")
        if name == high and value < current(low):
            raise ConfigError(f"{high} ({value!r}) must not be below {low} ({current(low)!r}); lower {low} first")


def checkBool(name: str) -> Callable[[Any], bool]:
    """
    @param name: the setting's name, for the message.
    @return: a checker that accepts only C{True} and C{False}.
    """

    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be True or False, got {value!r}")
        return value

    return check


def checkHandlerErrorPolicy(value: Any) -> str:
    """
    @param value: a proposed C{handlerErrorPolicy}.
    @return: the value.
    @raise ConfigError: it is not one of L{HANDLER_ERROR_POLICIES}.
    """
    if value not in HANDLER_ERROR_POLICIES:
        raise ConfigError(
            f"handlerErrorPolicy must be one of {', '.join(HANDLER_ERROR_POLICIES)}, "
            f"got {value!r}"
        )
    return value


CHECKS: dict[str, Callable[[Any], Any]] = {
    "maxMsgLen": checkMaxMsgLen,
    "cronPeriod": checkCronPeriod,
    "waitTime": checkWaitTime,
    "readIdleTimeout": checkReadIdleTimeout,
    "packetTimeout": checkPacketTimeout,
    "openTimeout": checkOpenTimeout,
    "firstPacketTimeout": checkFirstPacketTimeout,
    "writeTimeout": checkWriteTimeout,
    "tcpNoDelay": checkBool("tcpNoDelay"),
    "tcpKeepAlive": checkBool("tcpKeepAlive"),
    "keepAlivePeriod": checkKeepAlivePeriod,
    "handlerErrorPolicy": checkHandlerErrorPolicy,
    "writeHighMark": checkCount("writeHighMark"),
    "writeLowMark": checkCount("writeLowMark", positive=False),
    "maxPendingBytes": checkCount("maxPendingBytes"),
    "pauseReadingWhenUnwritable": checkBool("pauseReadingWhenUnwritable"),
    "backlogHighMark": checkCount("backlogHighMark"),
    "backlogLowMark": checkCount("backlogLowMark", positive=False),
    "maxPacketsPerTurn": checkCount("maxPacketsPerTurn", positive=False),
}

#: The settings of a listener (a C{Server} argument, or a key of one
#: listener's description): their checks.
LISTENER_CHECKS: dict[str, Callable[[Any], int]] = {
    "maxSessions": checkCount("maxSessions", positive=False),
    "backlog": checkCount("backlog"),
}


def checkListenerSetting(name: str, value: Any, where: str = "") -> int:
    """
    Check a listener setting, also one given as text in a description.

    @param name: a key of L{LISTENER_CHECKS}.
    @param value: its value (a text is read as a whole number).
    @param where: the description it came from, for the message.
    @return: the value.
    @raise ConfigError: it is not a whole number in range.
    """
    suffix = f" (in {where!r})" if where else ""
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {value!r}{suffix}") from None
    try:
        return LISTENER_CHECKS[name](value)
    except ConfigError as e:
        raise ConfigError(f"{e}{suffix}") from None


@dataclass(frozen=True)
class SessionConfig:
    """
    The settings every new session starts with; a new-session callback can
    still change them per session.

    @ivar maxMsgLen: largest packet accepted, in bytes; a longer declared
        length is refused as soon as the header arrives.
    @ivar cronPeriod: seconds between two C{onCron} calls.
    @ivar waitTime: seconds C{close()} lets pending output drain before it
        aborts the connection (0: abort at once).
    @ivar readIdleTimeout: seconds without any input after which the session
        is closed with L{ReadIdleTimeoutError
        <txgetty.errors.ReadIdleTimeoutError>} (0: off); C{None}: 300 for a
        server's sessions, 0 for a client's (L{ROLE_DEFAULTS}).
    @ivar packetTimeout: seconds a packet may take from its first byte to its
        last before the session is closed with L{PacketTimeoutError
        <txgetty.errors.PacketTimeoutError>} (0: off); it stops peers that
        trickle bytes.
    @ivar openTimeout: seconds a connection may take to open (TLS handshake
        and C{onOpen}) before it is dropped with L{OpenTimeoutError
        <txgetty.errors.OpenTimeoutError>} (0: off); on a WebSocket listener
        it bounds the whole HTTP stage, from connect to the upgrade.
    @ivar firstPacketTimeout: seconds from connecting until the peer's first
        complete packet on a stream (TCP, TLS, UNIX), before the session is
        closed with L{FirstPacketTimeoutError
        <txgetty.errors.FirstPacketTimeoutError>} (0: off); C{None}: 60 for
        a server's sessions, 0 for a client's (L{ROLE_DEFAULTS}).
    @ivar writeTimeout: seconds the session may stay unwritable with the
        peer taking none of the bytes waiting, before it is closed with
        L{WriteTimeoutError <txgetty.errors.WriteTimeoutError>} (0: off).
    @ivar tcpNoDelay: disable Nagle's algorithm on TCP connections.
    @ivar tcpKeepAlive: enable TCP keepalive probes.
    @ivar keepAlivePeriod: seconds of silence before the first keepalive
        probe (Linux C{TCP_KEEPIDLE}).
    @ivar handlerErrorPolicy: C{"close"} or C{"continue"}: what happens after
        C{onMessage} or C{onCron} raised and C{onError} saw it.
    @ivar writeHighMark: bytes waiting to be written above which the session
        becomes unwritable (C{isWritable()} is C{False}; netty's
        WriteBufferWaterMark).
    @ivar writeLowMark: bytes waiting below which it is writable again.
    @ivar maxPendingBytes: bytes waiting above which the session is closed
        with L{OutboundOverflowError <txgetty.errors.OutboundOverflowError>}
        (a peer that never reads cannot grow the server's memory).
    @ivar pauseReadingWhenUnwritable: stop reading from the peer while the
        session is unwritable (a peer that does not read its replies stops
        being read).
    @ivar backlogHighMark: packets waiting for a task pool above which
        reading from the peer pauses.
    @ivar backlogLowMark: packets waiting below which reading resumes.
    @ivar maxPacketsPerTurn: packets a read hands to C{onMessage} in one
        reactor turn; the rest wait for the next turns, reading paused, so
        one peer cannot hold the reactor thread (0: no bound).
    """

    maxMsgLen: int = DEFAULT_MAX_MSG_LEN
    cronPeriod: float = DEFAULT_CRON_PERIOD
    waitTime: float = DEFAULT_WAIT_TIME
    readIdleTimeout: float | None = None
    packetTimeout: float = DEFAULT_PACKET_TIMEOUT
    openTimeout: float = DEFAULT_OPEN_TIMEOUT
    firstPacketTimeout: float | None = None
    writeTimeout: float = DEFAULT_WRITE_TIMEOUT
    tcpNoDelay: bool = True
    tcpKeepAlive: bool = True
    keepAlivePeriod: float = DEFAULT_KEEPALIVE_PERIOD
    handlerErrorPolicy: str = "close"
    writeHighMark: int = DEFAULT_WRITE_HIGH_MARK
    writeLowMark: int = DEFAULT_WRITE_LOW_MARK
    maxPendingBytes: int = DEFAULT_MAX_PENDING_BYTES
    pauseReadingWhenUnwritable: bool = True
    backlogHighMark: int = DEFAULT_BACKLOG_HIGH_MARK
    backlogLowMark: int = DEFAULT_BACKLOG_LOW_MARK
    maxPacketsPerTurn: int = DEFAULT_MAX_PACKETS_PER_TURN

    def __post_init__(self) -> None:
        """
        Check every field, and that low marks do not exceed high marks.

        @raise ConfigError: a field has a value that cannot work.
        """
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None or f.name not in ROLE_DEFAULTS:
                object.__setattr__(self, f.name, CHECKS[f.name](value))
        for low, high in ORDERED_PAIRS:
            if getattr(self, low) > getattr(self, high):
                raise ConfigError(
                    f"{low} ({getattr(self, low)!r}) must not exceed {high} ({getattr(self, high)!r})"
                )

    def forRole(self, role: str) -> SessionConfig:
        """
        @param role: one of L{ROLES}.
        @return: this config with the role's value for each setting left at
            C{None} (L{ROLE_DEFAULTS}).
        @raise ConfigError: the role is unknown.
        """
        if role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        unset: dict[str, Any] = {name: byRole[role] for name, byRole in ROLE_DEFAULTS.items() if getattr(self, name) is None}
        return replace(self, **unset) if unset else self
