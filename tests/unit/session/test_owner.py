"""
Unit tests for L{txgetty.session.owner}: the base owner of sessions and the
reason this side's close gives.
"""

from __future__ import annotations

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.errors import ConnectionClosedLocally
from txgetty.session import SessionOwner
from txgetty.session.owner import asFailure


class SessionOwnerTests(SynchronousTestCase):
    """
    The base L{SessionOwner} accepts every session and ignores the rest.
    """

    def test_acceptsAndIgnores(self) -> None:
        """
        Its four methods return nothing and raise nothing; it makes client
        sessions.
        """
        owner = SessionOwner()
        self.assertEqual(owner.sessionRole, "client")
        for call in (owner.configureSession, owner.sessionOpened, owner.sessionGone):
            self.assertIsNone(call(object()))
        self.assertIsNone(owner.sessionRefused(object(), Failure(ValueError())))


class AsFailureTests(SynchronousTestCase):
    """
    L{asFailure} turns a close reason into a failure.
    """

    def test_failureKept(self) -> None:
        """
        A failure is returned as it is.
        """
        f = Failure(ValueError("x"))
        self.assertIs(asFailure(f), f)

    def test_exceptionWrapped(self) -> None:
        """
        An exception becomes the value of a failure.
        """
        e = ValueError("x")
        self.assertIs(asFailure(e).value, e)

    def test_textOrNone(self) -> None:
        """
        A text, or nothing, is a L{ConnectionClosedLocally} with that text or
        "closed by this side".
        """
        self.assertEqual(str(asFailure("bye").value), "bye")
        none = asFailure(None)
        self.assertIsInstance(none.value, ConnectionClosedLocally)
        self.assertEqual(str(none.value), "closed by this side")
