"""
The client side of one RPC connection: the calls an L{RpcClient
<txgetty.rpc.client.RpcClient>} has in flight on it (L{ClientCall}), and the
listener of its session (L{ClientConnection}), which reports answers, lost
calls and its comings and goings to the client through L{ICallOwner
<txgetty.interfaces.ICallOwner>}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ..handlers import EventListener
from ..interfaces import ICallOwner
from . import frame as F
from .errors import ConnectionLostError

_log = Logger()


class ClientCall:
    """
    A call of an L{RpcClient <txgetty.rpc.client.RpcClient>} waiting for
    its response: its arguments and options, its attempts, the connection
    and request id it was sent with, and its timer.
    """

    __slots__ = ("deferred", "timer", "name", "args", "options", "attempts", "connection", "requestId", "tried",
                 "deadline", "refusedBy", "started")

    def __init__(self, deferred: Deferred, name: str, args: tuple, options: dict, started: float = 0.0) -> None:
        """
        @param deferred: what the caller waits on.
        @param name: C{Service.method}.
        @param args: the positional arguments.
        @param options: the call options (C{timeout}, C{metadata}, ...).
        @param started: when the call was made (reactor seconds).
        """
        self.deferred, self.name, self.args, self.options = deferred, name, args, options
        self.started = started
        self.timer: Any = None
        self.attempts = 0
        self.connection: ClientConnection | None = None
        self.requestId = 0
        self.tried: set[str] = set()
        self.deadline: float | None = None
        #: The server that answered it C{ShuttingDown} or was going away.
        self.refusedBy: str | None = None


class ClientConnection(EventListener):
    """
    The listener of one RPC session of the client: its pending calls and
    heartbeat state.

    @ivar draining: the server sent its going-away notice (or answered
        C{ShuttingDown}): no new call is sent here, and the connection is
        closed once its pending calls are answered.
    """

    def __init__(self, client: ICallOwner, address: str) -> None:
        """
        @param client: the client whose calls it carries.
        @param address: the server address it is connected to.
        """
        self.client = client
        self.address = address
        self.pending: dict[int, ClientCall] = {}
        self.nextId = 0
        self.heartbeatOutstanding = False
        self.session: Any = None
        self.draining = False

    def newId(self) -> int:
        """
        @return: a request id not in use on this connection (never 0: the
            id of heartbeats and of the going-away notice).
        """
        while True:
            self.nextId = (self.nextId + 1) & 0xFFFFFFFF
            if self.nextId and self.nextId not in self.pending:
                return self.nextId

    def onOpen(self, session: Any) -> None:
        """
        @param session: the connection's session, open.
        """
        self.session = session
        self.client.connectionOpened(session)

    def onMessage(self, session: Any, frame: F.Frame) -> None:
        """
        A response answers its call; the going-away notice drains the
        connection; any frame shows the connection is alive.

        @param session: the session.
        @param frame: a frame from the server.
        """
        self.heartbeatOutstanding = False
        if frame.type == F.RESPONSE:
            pending = self.pending.pop(frame.requestId, None)
            if pending is not None:
                self.client.callAnswered(pending, frame)
                if self.draining:
                    self.settled()
                if not self.pending:
                    self.client.serverIdle(self.address)
            elif frame.head.get(F.STATUS) == F.GOING_AWAY:
                self.drain()

    def drain(self) -> None:
        """
        The server takes no new calls here: send none, close once the
        pending calls are answered (the pool dials a new connection then).
        """
        if not self.draining:
            self.draining = True
            _log.info("txgetty rpc: {address} is going away on one connection ({count} calls pending there); "
                      "new calls go to other connections", address=self.address, count=len(self.pending))
        self.settled()

    def settled(self) -> None:
        """
        A pending call ended: close a draining connection with none left.
        """
        if self.draining and not self.pending and self.session is not None and not self.session.isClosed:
            self.session.close("the server is going away: its pending calls are answered")

    def onCron(self, session: Any) -> None:
        """
        Send a heartbeat; if the previous one was not answered in a whole
        period, the connection is dead: close it (pending calls fail).
        """
        if self.heartbeatOutstanding:
            session.close(ConnectionLostError(
                f"a heartbeat got no answer for a whole heartbeat period ({session.cronPeriod:g} s): "
                f"the connection to {self.address} is dead"
            ))
            return
        self.heartbeatOutstanding = True
        session.writePkg(F.Frame(F.HEARTBEAT_REQUEST, 0, None, b"", self.client.serializer))

    def onClose(self, session: Any) -> None:
        """
        Every pending call fails now (or goes to another server, if it may).
        """
        pending, self.pending = self.pending, {}
        reason = session.closeReason.getErrorMessage() if session.closeReason else "closed"
        for call in pending.values():
            self.client.callLost(call, ConnectionLostError(
                f"the connection to {self.address} was lost before {call.name} was answered: {reason}"
            ))
        self.client.serverIdle(self.address)
        self.client.connectionClosed()
