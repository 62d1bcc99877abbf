"""
Capturing twisted.logger events in tests, and checking the logging rule of
docs/contracts.md ("Logging"): an unexpected exception is logged once, at
error level, with its traceback and the session's fields; a routine end is
one info line without a failure.
"""

from __future__ import annotations

from typing import Any
import gc

from twisted.internet.defer import Deferred
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.testing import RecordingListener


def captureEvents(testCase: SynchronousTestCase) -> list[dict]:
    """
    Record every log event until the test ends.

    @param testCase: the test, for clean-up.
    @return: the list the events are appended to.
    """
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    testCase.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def failureEvents(events: list[dict], exceptionType: type[BaseException]) -> list[dict]:
    """
    @param events: captured events.
    @param exceptionType: an exception class.
    @return: the events that carry a failure of that class.
    """
    return [e for e in events if "log_failure" in e and isinstance(e["log_failure"].value, exceptionType)]


def assertLoggedOnce(
    testCase: SynchronousTestCase, events: list[dict], exceptionType: type[BaseException], **fields: Any
) -> dict:
    """
    Check that a failure of C{exceptionType} was logged exactly once, at
    error level, with a traceback and the given fields, and nowhere else
    (no second event names it, trial saw it once); flush it.

    @param testCase: the test.
    @param events: captured events (L{captureEvents}).
    @param exceptionType: the exception class expected.
    @param fields: event keys and the values they must have.
    @return: the event.
    """
    gc.collect()  # a Deferred left failing logs "Unhandled error" when collected
    found = failureEvents(events, exceptionType)
    testCase.assertEqual(len(found), 1, f"expected one logged {exceptionType.__name__}, got {found!r}")
    [event] = found
    testCase.assertEqual(event["log_level"], LogLevel.error, formatEvent(event))
    failure = event["log_failure"]
    testCase.assertTrue(failure.frames, f"the logged failure has no traceback: {failure!r}")
    testCase.assertIn("Traceback", failure.getTraceback())
    for key, value in fields.items():
        testCase.assertEqual(event.get(key), value, f"field {key!r} of {formatEvent(event)!r}")
    text = formatEvent(event)
    testCase.assertIn(exceptionType.__name__, text)
    testCase.assertEqual(len(testCase.flushLoggedErrors(exceptionType)), 1)
    return event


def routineEvents(events: list[dict], errorName: str) -> list[dict]:
    """
    @param events: captured events.
    @param errorName: an exception class name (the C{error} field).
    @return: the events that log it without a failure.
    """
    return [e for e in events if e.get("error") == errorName and "log_failure" not in e]


def assertRoutineOnce(
    testCase: SynchronousTestCase, events: list[dict], errorName: str, **fields: Any
) -> dict:
    """
    Check that a routine end was logged exactly once, at info level,
    without a failure (so without a traceback).

    @param testCase: the test.
    @param events: captured events.
    @param errorName: the class name of the error (the C{error} field).
    @param fields: event keys and the values they must have.
    @return: the event.
    """
    found = routineEvents(events, errorName)
    testCase.assertEqual(len(found), 1, f"expected one routine {errorName} line, got {found!r}")
    [event] = found
    testCase.assertEqual(event["log_level"], LogLevel.info, formatEvent(event))
    for key, value in fields.items():
        testCase.assertEqual(event.get(key), value, f"field {key!r} of {formatEvent(event)!r}")
    testCase.assertFalse(failureEvents(events, BaseException), "a routine end came with a failure")
    return event


class Raising(RecordingListener):
    """
    Records every event; raises C{KeyError('nokey')} from the methods named
    in C{raising}.
    """

    def __init__(self, *raising: str) -> None:
        super().__init__()
        self.raising = raising

    def _maybeRaise(self, name: str) -> None:
        if name in self.raising:
            {}["nokey"]

    def onOpen(self, session: Any) -> Any:
        super().onOpen(session)
        self._maybeRaise("onOpen")

    def onMessage(self, session: Any, pkg: Any) -> Any:
        super().onMessage(session, pkg)
        self._maybeRaise("onMessage")

    def onCron(self, session: Any) -> None:
        super().onCron(session)
        self._maybeRaise("onCron")

    def onClose(self, session: Any) -> None:
        super().onClose(session)
        self._maybeRaise("onClose")

    def onError(self, session: Any, failure: Failure) -> None:
        super().onError(session, failure)
        self._maybeRaise("onError")

    def onWritabilityChanged(self, session: Any) -> None:
        self._maybeRaise("onWritabilityChanged")


def raisingDeferred(exc: BaseException) -> Deferred:
    """
    @param exc: an exception.
    @return: an unfired Deferred whose first callback raises C{exc}, as
        application code would (so the failure has a traceback): fire it
        with C{callback(None)}.
    """

    def raiseIt(_: Any) -> None:
        raise exc

    return Deferred().addCallback(raiseIt)
