"""
What the unit tests of the discovery services share: a recording
server-list listener, log filters, the address and key of the examples.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import LogLevel
from zope.interface import implementer

from txgetty.discovery import IServerListListener, ServerEntry


ADDRESS = "127.0.0.1:8091"
KEY = "/txgetty/services/Echo/127.0.0.1:8091"


@implementer(IServerListListener)
class Recorder:
    """
    Records every change it is told of.

    @ivar changes: C{(added, removed)} per call.
    """

    def __init__(self) -> None:
        self.changes: list[tuple[dict[str, ServerEntry], dict[str, ServerEntry]]] = []

    def onServersChanged(self, added: Any, removed: Any) -> None:
        self.changes.append((added, removed))

    def last(self) -> tuple[list[str], list[str]]:
        """
        @return: the addresses added and removed by the last change.
        """
        added, removed = self.changes[-1]
        return sorted(added), sorted(removed)


def levelEvents(events: list[dict], level: LogLevel, words: str) -> list[dict]:
    """
    @param events: captured log events.
    @param level: a level.
    @param words: text the event's format must contain.
    @return: the matching events.
    """
    return [e for e in events if e.get("log_level") == level and words in (e.get("log_format") or "")]
