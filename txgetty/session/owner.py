"""
What a session reports to the server or client that made it
(L{SessionOwner}), and the reason a close of this side's gives.
"""

from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure

from ..errors import ConnectionClosedLocally


class SessionOwner:
    """
    What a session reports to the server or client that made it.  The base
    class accepts every session and ignores the rest.

    (Its methods take the L{Session <txgetty.session.session.Session>}
    concerned; it is typed C{Any} here, which subclasses narrow, since this
    module does not import the session's.)

    @cvar sessionRole: who makes the sessions, for the settings whose
        default depends on it (L{txgetty.config.ROLE_DEFAULTS}):
        C{"client"} here, C{"server"} for a server.
    """

    sessionRole = "client"

    def configureSession(self, session: Any) -> None:
        """
        Set up a new session (codec, listener, limits); raise to refuse it.

        @param session: the session, connected but not yet open.
        """

    def sessionRefused(self, session: Any, failure: Failure) -> None:
        """
        @param session: a session the new-session callback refused.
        @param failure: why.
        """

    def sessionOpened(self, session: Any) -> None:
        """
        @param session: a session whose C{onOpen} succeeded.
        """

    def sessionGone(self, session: Any) -> None:
        """
        @param session: a session whose connection is gone.
        """


def asFailure(reason: Any) -> Failure:
    """
    @param reason: C{None}, a text, an exception or a L{Failure <twisted.python.failure.Failure>}: why this
        side closes a session.
    @return: a L{Failure <twisted.python.failure.Failure>} describing it.
    """
    if isinstance(reason, Failure):
        return reason
    if isinstance(reason, BaseException):
        return Failure(reason)
    return Failure(ConnectionClosedLocally(reason or "closed by this side"))
