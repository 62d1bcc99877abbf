"""
docs/observability.md, "Logs": "A format refers only to fields of its event:
no value is written into the text before it is logged", and "this table
lists every field a txgetty event carries". Checked on txgetty's source (read
with L{ast}, see L{tests.support.logscan}) against the table, both ways; and
the rule of the developers' guide that an unexpected exception is logged "at
error level, with its traceback (C{log.failure})".
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ..support.logscan import LogCall, Scan, documentedFields, formatFields

SCAN = Scan()


def _show(calls: list[LogCall]) -> str:
    return "\n".join(f"{c.where}: {c.method} {c.formats!r}" for c in calls)


class ScanTests(SynchronousTestCase):
    """
    The scan sees every log call of txgetty.
    """

    def test_everyCallSeen(self) -> None:
        """
        Each module has as many logger methods (C{_log.info}, ...) in the
        scan as a plain text search finds in it, each is called or given a
        name that is called (so a call the scan cannot read is not silently
        skipped), and there are many calls (the whole package is scanned).
        """
        self.assertEqual({m: n for m, n in SCAN.textCounts.items() if n},
                         {m: n for m, n in SCAN.methodCounts.items() if n})
        self.assertEqual(SCAN.unhandled, [])
        self.assertGreater(len([c for c in SCAN.calls if c.method != "tally"]), 80)

    def test_fieldsResolved(self) -> None:
        """
        Every C{**fields} of a log call is followed to the names it holds.
        """
        self.assertEqual(_show([c for c in SCAN.calls if c.open]), "")


class FormatTests(SynchronousTestCase):
    """
    "A format refers only to fields of its event."
    """

    def test_literalFormats(self) -> None:
        """
        Every format is a literal string (or one of a table of literals):
        no f-string, no C{%} and no C{.format()} made before logging.
        """
        self.assertEqual(_show([c for c in SCAN.calls if c.formats is None]), "")

    def test_formatNamesPassed(self) -> None:
        """
        Every C{{name}} of a format is a field its call passes.
        """
        missing = [f"{c.where}: {sorted(formatFields(fmt) - c.fields)} in {fmt!r}"
                   for c in SCAN.calls for fmt in c.formats or [] if formatFields(fmt) - c.fields]
        self.assertEqual(missing, [])

    def test_formatFields(self) -> None:
        """
        L{formatFields} reads the base name of each replacement field.
        """
        self.assertEqual(formatFields("{session!r}: {a.b} {c[0]} {delay:.2f} {{x}}"),
                         {"session", "a", "c", "delay"})


class TableTests(SynchronousTestCase):
    """
    "This table lists every field a txgetty event carries."
    """

    def test_usedAreDocumented(self) -> None:
        """
        Every field a call passes (or the supervisor adds to its workers'
        events) is a row of the table.
        """
        documented = documentedFields()
        undocumented = {name: where for name, where in SCAN.usedFields().items() if name not in documented}
        self.assertEqual(undocumented, {})

    def test_documentedAreUsed(self) -> None:
        """
        Every row of the table is a field some event carries.
        """
        self.assertEqual(set(documentedFields()) - set(SCAN.usedFields()), set())

    def test_stableNames(self) -> None:
        """
        The fields the issue names for connections are rows of the table.
        """
        self.assertLessEqual({"session", "listener", "peer", "reason"}, set(documentedFields()))


class FailureLevelTests(SynchronousTestCase):
    """
    "Unexpected exceptions are logged once, at error level, with their
    traceback (C{log.failure})."
    """

    def test_failureAtError(self) -> None:
        """
        Every C{log.failure} passes C{LogLevel.error} (Twisted's default is
        critical).
        """
        wrong = [c for c in SCAN.calls if c.method == "failure" and c.levelArg != "LogLevel.error"]
        self.assertEqual(_show(wrong), "")
