"""
A client pool on a fake clock and a controlled endpoint, for the unit tests
of the pool and its slots.
"""

from __future__ import annotations

from typing import Any
import random

from twisted.internet.task import Clock

from txgetty.client import Client
from txgetty.client.reconnect import ReconnectPolicy
from txgetty.codec import HelloCodec
from txgetty.testing import ControlledEndpoint, RecordingListener


class ClientHarness:
    """
    A client on a fake clock and a controlled endpoint.
    """

    def __init__(self, connections: int = 1, **kw: Any) -> None:
        self.clock = Clock()
        self.endpoint = ControlledEndpoint()
        self.listener = RecordingListener()
        self.refuse = False
        kw.setdefault("reconnect", ReconnectPolicy(jitter=0))
        self.client = Client(
            self.endpoint, self.newSession, connections=connections, reactor=self.clock,
            rng=random.Random(1), **kw,
        )

    def newSession(self, session: Any) -> Any:
        session.codec = HelloCodec()
        session.listener = self.listener
        return not self.refuse

    def delays(self) -> list[float]:
        """
        @return: the delays of the pending reconnect timers.
        """
        now = self.clock.seconds()
        return sorted(round(c.getTime() - now, 6) for c in self.clock.getDelayedCalls() if c.args == ("retry",))
