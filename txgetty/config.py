"""
Session settings: their defaults, and the checks that turn a bad value into a
L{ConfigError} naming the setting.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
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


def checkCronPeriod(value: Any) -> float:
    """
    @param value: a proposed C{cronPeriod} in seconds.
    @return: the value as a float.
    @raise ConfigError: it is not a positive number.
    """
    return _number("cronPeriod", value, positive=True)


def checkWaitTime(value: Any) -> float:
    """
    @param value: a proposed C{waitTime} in seconds (0: abort at once).
    @return: the value as a float.
    @raise ConfigError: it is negative or not a number.
    """
    return _number("waitTime", value, positive=False)


def checkReadIdleTimeout(value: Any) -> float:
    """
    @param value: a proposed C{readIdleTimeout} in seconds (0: off).
    @return: the value as a float.
    @raise ConfigError: it is negative or not a number.
    """
    return _number("readIdleTimeout", value, positive=False)


def checkPacketTimeout(value: Any) -> float:
    """
    @param value: a proposed C{packetTimeout} in seconds (0: off).
    @return: the value as a float.
    @raise ConfigError: it is negative or not a number.
    """
    return _number("packetTimeout", value, positive=False)


def checkOpenTimeout(value: Any) -> float:
    """
    @param value: a proposed C{openTimeout} in seconds (0: off).
    @return: the value as a float.
    @raise ConfigError: it is negative or not a number.
    """
    return _number("openTimeout", value, positive=False)


def checkKeepAlivePeriod(value: Any) -> float:
    """
    @param value: a proposed C{keepAlivePeriod} in seconds.
    @return: the value as a float.
    @raise ConfigError: it is not a positive number, or above the kernel's
        limit of 32767 seconds.
    """
    return _number("keepAlivePeriod", value, positive=True, upper=32767)


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
    "tcpNoDelay": checkBool("tcpNoDelay"),
    "tcpKeepAlive": checkBool("tcpKeepAlive"),
    "keepAlivePeriod": checkKeepAlivePeriod,
    "handlerErrorPolicy": checkHandlerErrorPolicy,
}


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
        <txgetty.errors.ReadIdleTimeoutError>} (0: off).
    @ivar packetTimeout: seconds a packet may take from its first byte to its
        last before the session is closed with L{PacketTimeoutError
        <txgetty.errors.PacketTimeoutError>} (0: off); it stops peers that
        trickle bytes.
    @ivar openTimeout: seconds a connection may take to open (TLS handshake
        and C{onOpen}) before it is dropped with L{OpenTimeoutError
        <txgetty.errors.OpenTimeoutError>} (0: off).
    @ivar tcpNoDelay: disable Nagle's algorithm on TCP connections.
    @ivar tcpKeepAlive: enable TCP keepalive probes.
    @ivar keepAlivePeriod: seconds of silence before the first keepalive
        probe (Linux C{TCP_KEEPIDLE}).
    @ivar handlerErrorPolicy: C{"close"} or C{"continue"}: what happens after
        C{onMessage} or C{onCron} raised and C{onError} saw it.
    """

    maxMsgLen: int = DEFAULT_MAX_MSG_LEN
    cronPeriod: float = DEFAULT_CRON_PERIOD
    waitTime: float = DEFAULT_WAIT_TIME
    readIdleTimeout: float = 0.0
    packetTimeout: float = DEFAULT_PACKET_TIMEOUT
    openTimeout: float = DEFAULT_OPEN_TIMEOUT
    tcpNoDelay: bool = True
    tcpKeepAlive: bool = True
    keepAlivePeriod: float = DEFAULT_KEEPALIVE_PERIOD
    handlerErrorPolicy: str = "close"

    def __post_init__(self) -> None:
        """
        Check every field.

        @raise ConfigError: a field has a value that cannot work.
        """
        for f in fields(self):
            object.__setattr__(self, f.name, CHECKS[f.name](getattr(self, f.name)))
