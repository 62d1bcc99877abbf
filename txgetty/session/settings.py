"""
The per-session settings as checked properties, and the TCP socket options
they control.
"""

from __future__ import annotations

import socket
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet.interfaces import ITCPTransport

from . import lifecycle as S
from ..config import CHECKS, SessionConfig, checkOrder
from ..transports.sockets import socketOf

if TYPE_CHECKING:
    from .timers import SessionTimers


class SessionSettings:
    """
    The values of a session's settings, one attribute per name of
    L{txgetty.config.CHECKS}.  Sessions made from one config share one
    (C{shared}); a session's first change of its own copies it, so a
    server's sessions cost no setting writes each.

    @ivar shared: whether other sessions use this object too.
    """

    __slots__ = tuple(CHECKS) + ("shared",)
    # The slots' types (the values of SessionConfig's fields).
    shared: bool
    maxMsgLen: int
    cronPeriod: float
    waitTime: float
    readIdleTimeout: float
    packetTimeout: float
    openTimeout: float
    firstPacketTimeout: float
    writeTimeout: float
    tcpNoDelay: bool
    tcpKeepAlive: bool
    keepAlivePeriod: float
    handlerErrorPolicy: str
    writeHighMark: int
    writeLowMark: int
    maxPendingBytes: int
    pauseReadingWhenUnwritable: bool
    backlogHighMark: int
    backlogLowMark: int
    maxPacketsPerTurn: int

    def copy(self) -> SessionSettings:
        """
        @return: a copy of these values, not shared.
        """
        new = SessionSettings.__new__(SessionSettings)
        for name in CHECKS:
            setattr(new, name, getattr(self, name))
        new.shared = False
        return new


#: Configs seen (a server hands the same one to every session), by identity
#: and role, with their shared settings; bounded, as configs may be made
#: per session.
_SHARED: dict[tuple[int, str], tuple[SessionConfig, SessionSettings]] = {}


#: The config, role and settings of the last L{sharedSettings} call.
_last: list[tuple[Any, str, Any]] = [(None, "", None)]


def sharedSettings(config: SessionConfig, role: str) -> SessionSettings:
    """
    @param config: a (checked) config.
    @param role: who makes the session (L{txgetty.config.ROLES}), for the
        settings the config leaves to the role.
    @return: the settings that the sessions of that config and role share.
    """
    last = _last[0]
    if last[0] is config and last[1] == role:
        # (A server hands the same config to every session.)
        return last[2]
    key = (id(config), role)
    entry = _SHARED.get(key)
    if entry is None or entry[0] is not config:
        if len(_SHARED) >= 64:
            _SHARED.clear()
        resolved = config.forRole(role)
        settings = SessionSettings.__new__(SessionSettings)
        for name in CHECKS:
            setattr(settings, name, getattr(resolved, name))
        settings.shared = True
        entry = _SHARED[key] = (config, settings)
    _last[0] = (config, role, entry[1])
    return entry[1]


def _setting(name: str, doc: str, onChange: Callable[[Any], None] | None = None) -> property:
    """
    Make a property that checks a setting with L{txgetty.config.CHECKS}
    (and L{txgetty.config.checkOrder} for the water marks) and stores it in
    the session's L{SessionSettings} (copied first if shared).

    @param name: the setting's name.
    @param doc: the property's docstring.
    @param onChange: a method of the session, called after a new value is
        stored.
    @return: the property.
    """
    check = CHECKS[name]

    def set(self: Any, value: Any) -> None:
        value = check(value)
        settings = self._cfg
        checkOrder(name, value, lambda other: getattr(settings, other))
        if settings.shared:
            # The first change of a session's own: copy the shared settings.
            settings = self._cfg = settings.copy()
        setattr(settings, name, value)
        if onChange is not None:
            onChange(self)

    # attrgetter: a C-level getter, as the codecs read maxMsgLen per packet.
    return property(attrgetter("_cfg." + name), set, doc=doc)


class SessionOptionsMixin:
    """
    The settings of a session, each checked when set; see
    L{txgetty.config.SessionConfig} for their meaning and defaults.  The
    values live in a L{SessionSettings}; a change of a timer's setting goes
    to the session's L{SessionTimers <txgetty.session.timers.SessionTimers>}.
    """

    if TYPE_CHECKING:
        _cfg: SessionSettings
        _timers: SessionTimers
        _state: Any
        transport: Any

        def _watchWrites(self) -> None: ...
        _accepted: Any
        _socketHas: tuple[bool, bool, float] | None
    else:
        # _socketHas: the settings (tcpNoDelay, tcpKeepAlive,
        # keepAlivePeriod) whose options the socket has, or None (unknown).
        __slots__ = ("_cfg", "_socketHas")

    def _cronPeriodChanged(self) -> None:
        """
        C{cronPeriod} changed.
        """
        self._timers.cronPeriodChanged()

    def _idleTimeoutChanged(self) -> None:
        """
        C{readIdleTimeout} changed.
        """
        self._timers.idleTimeoutChanged()

    def _packetTimeoutChanged(self) -> None:
        """
        C{packetTimeout} changed.
        """
        self._timers.packetTimeoutChanged()

    def _firstPacketTimeoutChanged(self) -> None:
        """
        C{firstPacketTimeout} changed.
        """
        self._timers.firstPacketTimeoutChanged(self._state is S.OPENING or self._state is S.HANDSHAKING)

    def _socketOptionsChanged(self) -> None:
        """
        A TCP option changed: apply it to a connected session.
        """
        if self.transport is not None and not self._state.final:
            self._applySocketOptions()

    def _writeMarksChanged(self) -> None:
        """
        C{writeHighMark} changed: size the transport's buffer to it.
        """
        if self.transport is not None and not self._state.final:
            self._watchWrites()

    maxMsgLen = _setting("maxMsgLen", "Largest packet accepted, in bytes.")
    cronPeriod = _setting("cronPeriod", "Seconds between two onCron calls.", _cronPeriodChanged)
    waitTime = _setting("waitTime", "Seconds close() lets output drain before aborting.")
    readIdleTimeout = _setting(
        "readIdleTimeout", "Seconds without input before closing (0: off).", _idleTimeoutChanged
    )
    packetTimeout = _setting(
        "packetTimeout", "Seconds a started packet may take to complete (0: off).", _packetTimeoutChanged
    )
    openTimeout = _setting(
        "openTimeout", "Seconds a connection may take to open (TLS handshake, onOpen); 0: off."
    )
    firstPacketTimeout = _setting(
        "firstPacketTimeout", "Seconds from connecting to the first complete packet (streams); 0: off.",
        _firstPacketTimeoutChanged,
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
        Take every setting from a (checked) config: the settings shared by
        the sessions of that config and role.

        @param config: the settings.
        @param role: who makes the session, for the settings left to the
            role (L{txgetty.config.ROLE_DEFAULTS}).
        """
        self._cfg = sharedSettings(config, role)

    def _applySocketOptions(self) -> None:
        """
        Set TCP no-delay and keepalive on a TCP transport, unless its socket
        has these values already: from the listening socket that accepted
        it (L{AcceptedSockets <txgetty.transports.sockets.AcceptedSockets>}),
        or set before.  Other transports (UNIX sockets too, although Twisted
        declares them L{ITCPTransport}) ignore these settings.
        """
        transport = self.transport
        settings = self._cfg
        want = (settings.tcpNoDelay, settings.tcpKeepAlive, settings.keepAlivePeriod)
        accepted = self._accepted
        if accepted is not None:
            self._accepted = None
            self._socketHas = accepted.optionsOf(transport)
        if want == self._socketHas or not ITCPTransport.providedBy(transport):
            return
        sock = socketOf(transport)
        if sock is not None and sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        transport.setTcpNoDelay(settings.tcpNoDelay)
        transport.setTcpKeepAlive(settings.tcpKeepAlive)
        if settings.tcpKeepAlive and sock is not None and hasattr(socket, "TCP_KEEPIDLE"):
            period = max(1, int(settings.keepAlivePeriod))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, period)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, min(period, 75))
        # Known only where the socket was reached (else perhaps not all set).
        self._socketHas = want if sock is not None else None
