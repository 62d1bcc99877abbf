"""
Unit tests of the C{txgetty} command's error wording (L{txgetty.tools.cli}).
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase


class DescribeErrorTests(TestCase):
    """
    L{describeError}, for the causes a test cannot produce on loopback.
    """

    def test_connectTimeout(self) -> None:
        """
        A connection that timed out names --timeout and its value.
        """
        from twisted.python.failure import Failure

        from txgetty.tools.cli import describeError
        from txgetty.errors import ConnectGaveUpError, ConnectTimeoutError

        error = ConnectGaveUpError("gave up", label="tcp:10.1.2.3:80",
                                   lastFailure=Failure(ConnectTimeoutError("took more than 5 s")))
        self.assertEqual(describeError(error, 5.0), "cannot connect to tcp:10.1.2.3:80: no answer within 5 s "
                                                    "(--timeout): the host is down, or a firewall drops the packets?")

    def test_typesShownForOthers(self) -> None:
        """
        An error that is not one of txgetty's plain ones keeps its type;
        a multi-line message becomes one line.
        """
        from txgetty.tools.cli import describeError

        self.assertEqual(describeError(ValueError("a\nb")), "ValueError: a b")
