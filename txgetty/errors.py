"""
The exceptions txgetty raises or reports to C{onError}.

Each message says what was wrong and, where a limit was hit, which setting
changes it.
"""

from __future__ import annotations

from typing import Any


class TxGettyError(Exception):
    """
    Base class of every txgetty error.
    """


class ConfigError(TxGettyError, ValueError):
    """
    A setting has a value that cannot work; the message names the setting.
    """


class SessionClosedError(TxGettyError):
    """
    A write was attempted on a session that is closed or closing.
    """


class CodecError(TxGettyError):
    """
    The byte stream is broken: the reader cannot make a packet of it.
    """


class PacketTooLargeError(CodecError):
    """
    A packet declares (or has) more bytes than the session's C{maxMsgLen}.

    @ivar length: the declared length.
    @ivar limit: the session's C{maxMsgLen}.
    """

    def __init__(self, length: int, limit: int, setting: str = "maxMsgLen", what: str = "") -> None:
        """
        @param length: the declared packet length in bytes.
        @param limit: the limit it exceeds.
        @param setting: the name of the setting that sets the limit.
        @param what: a description of the oversize thing, instead of "packet
            of LENGTH bytes".
        """
        self.length = length
        self.limit = limit
        super().__init__(
            f"{what or f'packet of {length} bytes'} exceeds the limit of {limit} bytes "
            f"(raise the session's {setting}, or --max-msg-len for twistd)"
        )


class DatagramTooLargeError(PacketTooLargeError):
    """
    A packet written on a UDP session does not fit one datagram; it was not
    sent.
    """

    def __init__(self, length: int, limit: int, peer: str) -> None:
        """
        @param length: the encoded packet's length in bytes.
        @param limit: the most bytes one datagram holds.
        @param peer: where it was to go (C{HOST:PORT}).
        """
        self.length = length
        self.limit = limit
        CodecError.__init__(
            self, f"a packet of {length} bytes cannot be sent to {peer}: one UDP datagram holds at most "
                  f"{limit} bytes over IPv4 (split it, or use a stream transport); not sent"
        )


class SessionTimeoutError(TxGettyError):
    """
    A session was closed because a timer ran out.
    """


class ReadIdleTimeoutError(SessionTimeoutError):
    """
    Nothing arrived for C{readIdleTimeout} seconds.
    """


class PeerIdleError(SessionTimeoutError):
    """
    The close reason of a UDP peer session that was silent for its
    C{readIdleTimeout}: how UDP peers leave, so a clean end (no C{onError}).
    """


class PacketTimeoutError(SessionTimeoutError):
    """
    A packet was started but not finished within C{packetTimeout} seconds
    (a slow or stalled peer).
    """


class OpenTimeoutError(SessionTimeoutError):
    """
    A connection did not open (TLS handshake, C{onOpen}) within
    C{openTimeout} seconds.
    """


class FirstPacketTimeoutError(SessionTimeoutError):
    """
    A stream connection did not deliver a complete packet within
    C{firstPacketTimeout} seconds of connecting (a peer that connects and
    stays silent, or trickles its first packet).
    """


class WriteTimeoutError(SessionTimeoutError):
    """
    Output waited for C{writeTimeout} seconds with the peer taking none of it
    (a peer that stopped reading).
    """


class TruncatedPacketError(CodecError):
    """
    The peer closed the connection in the middle of a packet.
    """


class SessionRefusedError(TxGettyError):
    """
    Raise it from a new-session callback to refuse a connection; txgetty also
    reports it when a callback leaves a session without a listener.
    """


class TLSHandshakeError(TxGettyError):
    """
    A TLS handshake failed; the message says why in plain words.
    """


class ConnectionClosedLocally(TxGettyError):
    """
    The close reason of a session that this side closed.
    """


class ConnectTimeoutError(TxGettyError):
    """
    A client could not open a session within its C{connectTimeout}.
    """


class SelfConnectError(SessionRefusedError):
    """
    A client connected to itself (local address equals remote address, which
    TCP allows when nothing listens on a local port); the session is dropped.
    """


class ConnectGaveUpError(TxGettyError):
    """
    A client stopped dialling after C{maxAttempts} failed attempts in a row.

    @ivar label: the address it dialled (C{tcp:HOST:PORT} ...), if known.
    @ivar lastFailure: the L{Failure <twisted.python.failure.Failure>} of the last attempt, if known.
    """

    def __init__(self, message: str, label: str | None = None, lastFailure: Any = None) -> None:
        """
        @param message: what happened, with the cause in plain words.
        @param label: the address dialled.
        @param lastFailure: why the last attempt failed.
        """
        super().__init__(message)
        self.label = label
        self.lastFailure = lastFailure


class NoSessionError(TxGettyError):
    """
    A client was asked for a session while none is open.
    """


class OutboundOverflowError(TxGettyError):
    """
    More than C{maxPendingBytes} bytes waited to be written to a session: the
    peer does not read; the session was closed.
    """


class TaskPoolError(TxGettyError):
    """
    A session's task pool cannot take its packets (not running).
    """


class DeadPeerError(TxGettyError):
    """
    A WebSocket peer did not answer a ping within a cron period.
    """


class WebSocketClosedError(TxGettyError):
    """
    A WebSocket ended with a close code other than 1000/1001, or without a
    close handshake.

    @ivar code: the close code (C{None} if none was received).
    @ivar reason: the close reason text.
    """

    def __init__(self, code: int | None, reason: str) -> None:
        """
        @param code: the close code.
        @param reason: the close reason.
        """
        self.code = code
        self.reason = reason
        super().__init__(f"WebSocket closed with code {code}: {reason}" if code else f"WebSocket lost: {reason}")
