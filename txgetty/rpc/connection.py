"""
The server side of one RPC connection: the listener of its session.
"""

from __future__ import annotations

from typing import Any

from ..handlers import EventListener
from zope.interface import implementer

from ..interfaces import ICallDispatcher, IReadCompleteListener
from . import frame as F
from .calls import PendingCall
from .serializers import DEFAULT_DECOMPRESS_LIMIT, JSON


@implementer(IReadCompleteListener)
class RpcConnection(EventListener):
    """
    The listener of one RPC connection: its calls in flight and whether it
    is authenticated.  It hands requests and oneways to its server through
    L{ICallDispatcher <txgetty.interfaces.ICallDispatcher>} and answers
    heartbeats and cancel frames itself.

    @ivar maxBody: the longest response body this connection sends: its
        session's C{maxMsgLen} less the 16 header bytes (a longer result is
        answered with C{ResponseTooLarge}).
    """

    def __init__(self, server: ICallDispatcher) -> None:
        """
        @param server: what runs the connection's calls (the L{RpcServer
            <txgetty.rpc.server.RpcServer>}).
        """
        self.server = server
        self.calls: dict[int, PendingCall] = {}
        self.authenticated = server.auth is None
        self.session: Any = None
        self.onewayKeys = 0
        self.maxBody = DEFAULT_DECOMPRESS_LIMIT - F.HEADER_SIZE
        #: The methods of the calls answered at once in the current read,
        #: counted when it is done (L{onReadComplete}), and when it arrived.
        self.answered: list[Any] = []
        self.answeredSince = 0.0

    def onOpen(self, session: Any) -> None:
        """
        @param session: the connection's session.
        """
        self.session = session
        self.maxBody = session.maxMsgLen - F.HEADER_SIZE
        self.server.connectionOpened(self)
        if self.server.draining:
            self.goingAway()

    def goingAway(self) -> None:
        """
        Send the going-away notice (docs/rpc-protocol.md): the server takes
        no new calls on this connection.
        """
        self.respond(F.Frame(F.RESPONSE, 0, {F.STATUS: F.GOING_AWAY}, b"", JSON))

    def onMessage(self, session: Any, frame: F.Frame) -> Any:
        """
        @param session: the session.
        @param frame: a frame from the client.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} while the first request is authenticated
            (the next frames wait for it), else C{None}.
        """
        kind = frame.type
        if kind == F.REQUEST or kind == F.ONEWAY:
            if self.authenticated:
                self.server.request(self, frame)
                return None
            return self.server.authenticate(self, frame)
        if kind == F.HEARTBEAT_REQUEST:
            session.writePkg(F.Frame(F.HEARTBEAT_RESPONSE, frame.requestId, None, b"", frame.serializer))
        elif kind == F.CANCEL:
            call = self.calls.get(frame.requestId)
            if call is not None:
                call.cancel()
        return None

    def onReadComplete(self, session: Any) -> None:
        """
        The frames of one read were handled: count the calls answered at
        once, all in one go (L{IReadCompleteListener
        <txgetty.interfaces.IReadCompleteListener>}).

        @param session: the session.
        """
        if self.answered:
            self.server.countAnswered(self)

    def onClose(self, session: Any) -> None:
        """
        Cancel what is still running: nobody can get its answer.

        @param session: the session.
        """
        if self.answered:
            self.server.countAnswered(self)
        calls, self.calls = self.calls, {}
        for call in calls.values():
            call.cancel()
        self.server.connectionClosed(self)

    def respond(self, frame: F.Frame | bytes) -> None:
        """
        @param frame: a response to send (a L{Frame <txgetty.rpc.frame.Frame>} or its bytes), if the
            session is still open.
        """
        if self.session.acceptsWrites:
            self.session.writePkg(frame)
