"""
The per-session settings as checked properties, and the TCP socket options
they control.
"""

from __future__ import annotations

import socket
from operator import attrgetter
from typing import Any, Callable

from twisted.internet.interfaces import ITCPTransport

from . import lifecycle as S
from ..config import CHECKS, SessionConfig, checkOrder
from ..transports.sockets import socketOf


def _setting(name: str, doc: str, onChange: Callable[[Any], None] | None = None) -> property:
    """
    Make a property that checks a setting with L{txgetty.config.CHECKS}
    (and L{txgetty.config.checkOrder} for the water marks).

    @param name: the setting's name; the value lives in C{_<name>}.
    @param doc: the property's docstring.
    @param onChange: called with the session after a new value is stored.
    @return: the property.
    """
    slot = "_" + name
    check = CHECKS[name]

    def set(self: Any, value: Any) -> None:
        value = check(value)
        checkOrder(name, value, lambda other: getattr(self, "_" + other))
        setattr(self, slot, value)
        if onChange is not None:
            onChange(self)

    # attrgetter: a C-level getter, as the codecs read maxMsgLen per packet.
    return property(attrgetter(slot), set, doc=doc)


def _rearmCron(session: Any) -> None:
    """
    @param session: a session whose C{cronPeriod} changed.
    """
    call = session._cronCall
    if call is not None and call.active():
        call.reset(session._cronPeriod)


def _rearmIdle(session: Any) -> None:
    """
    @param session: a session whose C{readIdleTimeout} changed.
    """
    if session._idleCall is not None:
        session._idleCall.cancel()
        session._idleCall = None
    if session._state is S.OPEN:
        session._scheduleIdle(session._readIdleTimeout or None)


def _rearmPacket(session: Any) -> None:
    """
    @param session: a session whose C{packetTimeout} changed.
    """
    if session._packetCall is not None:
        session._packetCall.cancel()
        session._packetCall = None
    if session._state is S.OPEN and session._packetTimeout and session._partialSince is not None:
        session._packetCall = session._wheel.callLater(0, session._packetCheck)


def _rearmFirstPacket(session: Any) -> None:
    """
    @param session: a session whose C{firstPacketTimeout} changed.
    """
    call, session._firstCall = session._firstCall, None
    if call is not None and call.active():
        call.cancel()
    if session._state is S.OPEN:
        # The idle timer watches the first packet: reschedule it for both.
        idle, session._idleCall = session._idleCall, None
        if idle is not None and idle.active():
            idle.cancel()
        timeout = session._readIdleTimeout
        left = timeout - (session._clock.seconds() - session.lastActive) if timeout else None
        session._scheduleIdle(None if left is None else max(left, 0.0))
    elif session._state is S.OPENING or session._state is S.HANDSHAKING:
        session._armFirstPacket()


def _socketOptionsChanged(session: Any) -> None:
    """
    @param session: a session whose TCP options changed.
    """
    if session.transport is not None and not session._state.final:
        session._applySocketOptions()


def _writeMarksChanged(session: Any) -> None:
    """
    @param session: a session whose C{writeHighMark} changed.
    """
    if session.transport is not None and not session._state.final:
        session._watchWrites()


#: Configs seen (a server hands the same one to every session), by identity
#: and role, with their (slot, value) pairs; bounded, as configs may be made
#: per session.
_PAIRS: dict[tuple[int, str], tuple[SessionConfig, tuple[tuple[str, Any], ...]]] = {}


def _configPairs(config: SessionConfig, role: str) -> tuple[tuple[str, Any], ...]:
    """
    @param config: a config.
    @param role: who makes the session (L{txgetty.config.ROLES}), for the
        settings the config leaves to the role.
    @return: each setting's session slot and value.
    """
    key = (id(config), role)
    entry = _PAIRS.get(key)
    if entry is None or entry[0] is not config:
        if len(_PAIRS) >= 64:
            _PAIRS.clear()
        resolved = config.forRole(role)
        entry = _PAIRS[key] = (config, tuple(("_" + name, getattr(resolved, name)) for name in CHECKS))
    return entry[1]


class SessionOptionsMixin:
    """
    The settings of a session, each checked when set; see
    L{txgetty.config.SessionConfig} for their meaning and defaults.
    """

    __slots__ = (
        "_maxMsgLen", "_cronPeriod", "_waitTime", "_readIdleTimeout", "_packetTimeout", "_openTimeout",
        "_tcpNoDelay", "_tcpKeepAlive", "_keepAlivePeriod", "_handlerErrorPolicy",
        "_writeHighMark", "_writeLowMark", "_maxPendingBytes", "_pauseReadingWhenUnwritable",
        "_backlogHighMark", "_backlogLowMark", "_firstPacketTimeout", "_writeTimeout", "_maxPacketsPerTurn",
    )
    # The slots' types (the values of SessionConfig's fields).
    _maxMsgLen: int
    _cronPeriod: float
    _waitTime: float
    _readIdleTimeout: float
    _packetTimeout: float
    _openTimeout: float
    _tcpNoDelay: bool
    _tcpKeepAlive: bool
    _keepAlivePeriod: float
    _handlerErrorPolicy: str
    _writeHighMark: int
    _writeLowMark: int
    _maxPendingBytes: int
    _pauseReadingWhenUnwritable: bool
    _backlogHighMark: int
    _backlogLowMark: int
    _firstPacketTimeout: float
    _writeTimeout: float
    _maxPacketsPerTurn: int

    maxMsgLen = _setting("maxMsgLen", "Largest packet accepted, in bytes.")
    cronPeriod = _setting("cronPeriod", "Seconds between two onCron calls.", _rearmCron)
    waitTime = _setting("waitTime", "Seconds close() lets output drain before aborting.")
    readIdleTimeout = _setting(
        "readIdleTimeout", "Seconds without input before closing (0: off).", _rearmIdle
    )
    packetTimeout = _setting(
        "packetTimeout", "Seconds a started packet may take to complete (0: off).", _rearmPacket
    )
    openTimeout = _setting(
        "openTimeout", "Seconds a connection may take to open (TLS handshake, onOpen); 0: off."
    )
    firstPacketTimeout = _setting(
        "firstPacketTimeout", "Seconds from connecting to the first complete packet (streams); 0: off.",
        _rearmFirstPacket,
    )
    writeTimeout = _setting(
        "writeTimeout", "Seconds unwritable with the peer taking nothing before closing (0: off)."
    )
    maxPacketsPerTurn = _setting(
        "maxPacketsPerTurn", "Packets handed to onMessage per reactor turn before yielding (0: no bound)."
    )
    tcpNoDelay = _setting("tcpNoDelay", "Disable Nagle's algorithm.", _socketOptionsChanged)
    tcpKeepAlive = _setting("tcpKeepAlive", "Send TCP keepalive probes.", _socketOptionsChanged)
    keepAlivePeriod = _setting(
        "keepAlivePeriod", "Idle seconds before the first keepalive probe.", _socketOptionsChanged
    )
    handlerErrorPolicy = _setting(
        "handlerErrorPolicy", "'close' or 'continue' after a handler raised."
    )
    writeHighMark = _setting(
        "writeHighMark", "Bytes waiting above which the session is unwritable.", _writeMarksChanged
    )
    writeLowMark = _setting("writeLowMark", "Bytes waiting below which it is writable again.")
    maxPendingBytes = _setting(
        "maxPendingBytes", "Bytes waiting above which the session is closed (peer not reading)."
    )
    pauseReadingWhenUnwritable = _setting(
        "pauseReadingWhenUnwritable", "Stop reading from the peer while unwritable."
    )
    backlogHighMark = _setting(
        "backlogHighMark", "Packets waiting for the task pool above which reading pauses."
    )
    backlogLowMark = _setting("backlogLowMark", "Packets waiting below which reading resumes.")

    def _applyConfig(self, config: SessionConfig, role: str) -> None:
        """
        Take every setting from a (checked) config.

        @param config: the settings.
        @param role: who makes the session, for the settings left to the
            role (L{txgetty.config.ROLE_DEFAULTS}).
        """
        for slot, value in _configPairs(config, role):
            setattr(self, slot, value)

    def _applySocketOptions(self) -> None:
        """
        Set TCP no-delay and keepalive on a TCP transport.  Other transports
        (UNIX sockets too, although Twisted declares them L{ITCPTransport})
        ignore these settings.
        """
        transport = self.transport  # type: ignore[attr-defined]
        if not ITCPTransport.providedBy(transport):
            return
        sock = socketOf(transport)
        if sock is not None and sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        transport.setTcpNoDelay(self._tcpNoDelay)
        transport.setTcpKeepAlive(self._tcpKeepAlive)
        if self._tcpKeepAlive and sock is not None and hasattr(socket, "TCP_KEEPIDLE"):
            period = max(1, int(self._keepAlivePeriod))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, period)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, min(period, 75))
