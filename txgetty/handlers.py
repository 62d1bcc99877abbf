"""
A base class for event listeners, and the echo listener of the demo.
"""

from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure
from zope.interface import implementer

from .interfaces import IEventListener, ISession, IWritabilityListener


@implementer(IEventListener, IWritabilityListener)
class EventListener:
    """
    An L{IEventListener} whose methods do nothing; subclass it and
    override what you need.  It also has the optional
    C{onWritabilityChanged} (L{IWritabilityListener}), as a no-op.
    """

    def onOpen(self, session: ISession) -> Any:
        """
        @param session: the session that opened.
        """

    def onClose(self, session: ISession) -> None:
        """
        @param session: the session that closed.
        """

    def onError(self, session: ISession, failure: Failure) -> None:
        """
        Do nothing: the session has logged the failure already (once: a
        routine end at info, an unexpected exception at error level with
        its traceback; see docs/contracts.md, "Logging").

        @param session: the session concerned.
        @param failure: what went wrong.
        """

    def onCron(self, session: ISession) -> None:
        """
        @param session: the open session.
        """

    def onMessage(self, session: ISession, pkg: Any) -> Any:
        """
        @param session: the session the packet came from.
        @param pkg: the packet.
        """

    def onWritabilityChanged(self, session: ISession) -> None:
        """
        @param session: the session whose C{isWritable()} changed.
        """


class EchoListener(EventListener):
    """
    Writes every packet back to its sender.
    """

    def onMessage(self, session: ISession, pkg: Any) -> None:
        """
        @param session: the session the packet came from.
        @param pkg: the packet, sent back as it is.
        """
        session.writePkg(pkg)
