"""
Real components the tests run (etcd, promtool): under C{CI=true} a missing
one fails the test; elsewhere it is skipped, with the reason printed once
per component.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SkipTest

_told: set[str] = set()


def requireComponent(binary: str | None, what: str, reason: str) -> str:
    """
    @param binary: the component's path, or C{None} when it is missing.
    @param what: what would be skipped, for the printed line (C{"the etcd
        tests"}).
    @param reason: why it is missing and how to install it.
    @return: C{binary}.
    @raise SkipTest: it is missing, outside CI.
    @raise AssertionError: it is missing and C{CI=true}.
    """
    if binary is not None:
        return binary
    if os.environ.get("CI") == "true":
        raise AssertionError(f"{reason}; CI=true requires {what} to run")
    if what not in _told:
        print(f"skipping {what}: {reason}")
        _told.add(what)
    raise SkipTest(reason)
