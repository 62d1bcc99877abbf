"""
Unit tests of L{txgetty.config}: the settings table, the defaults of each
role, and the checks of each setting.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from txgetty.client import Client
from txgetty.codec import HelloCodec
from txgetty.config import (
    DEFAULT_FIRST_PACKET_TIMEOUT,
    DEFAULT_MAX_PACKETS_PER_TURN,
    DEFAULT_READ_IDLE_TIMEOUT,
    DEFAULT_WRITE_TIMEOUT,
    ROLE_DEFAULTS,
    SessionConfig,
)
from txgetty.errors import ConfigError
from txgetty.session import Session
from txgetty.testing import RecordingListener, sessionOnStringTransport
from txgetty.transports.udp import DEFAULT_PEER_IDLE

from ..support.net import helloFrame as hello
from ..support.sessions import accept, echoSession, serverOn
from ..support.transports import FakeUDPReactor


class RoleDefaultTests(SynchronousTestCase):
    """
    readIdleTimeout and firstPacketTimeout default to None in a config: a
    server's sessions get 300 s and 60 s, a client's get 0 (off); values
    given apply to both.
    """

    def test_configLeavesThemToTheRole(self) -> None:
        """
        A default config holds None for exactly the settings of
        ROLE_DEFAULTS, and forRole fills them in.
        """
        config = SessionConfig()
        self.assertEqual({f.name for f in fields(config) if getattr(config, f.name) is None}, set(ROLE_DEFAULTS))
        server = config.forRole("server")
        client = config.forRole("client")
        self.assertEqual((server.readIdleTimeout, server.firstPacketTimeout),
                         (DEFAULT_READ_IDLE_TIMEOUT, DEFAULT_FIRST_PACKET_TIMEOUT))
        self.assertEqual((client.readIdleTimeout, client.firstPacketTimeout), (0.0, 0.0))
        self.assertEqual((DEFAULT_READ_IDLE_TIMEOUT, DEFAULT_FIRST_PACKET_TIMEOUT), (300.0, 60.0))
        given = SessionConfig(readIdleTimeout=5, firstPacketTimeout=0)
        self.assertEqual(given.forRole("client"), given.forRole("server"))
        self.assertRaises(ConfigError, config.forRole, "proxy")

    def test_otherDefaults(self) -> None:
        """
        writeTimeout is 60 s and maxPacketsPerTurn 256 for every role; bad
        values of the new settings raise ConfigError naming them.
        """
        config = SessionConfig()
        self.assertEqual((config.writeTimeout, config.maxPacketsPerTurn), (DEFAULT_WRITE_TIMEOUT, 256))
        self.assertEqual((DEFAULT_WRITE_TIMEOUT, DEFAULT_MAX_PACKETS_PER_TURN), (60.0, 256))
        for name, bad in [("firstPacketTimeout", -1), ("writeTimeout", "soon"), ("maxPacketsPerTurn", -1),
                          ("maxPacketsPerTurn", 1.5), ("writeTimeout", True), ("firstPacketTimeout", float("nan"))]:
            e = self.assertRaises(ConfigError, SessionConfig, **{name: bad})
            self.assertIn(name, str(e))
        session, _ = sessionOnStringTransport(RecordingListener(), HelloCodec())
        self.assertRaises(ConfigError, setattr, session, "readIdleTimeout", None)
        self.assertRaises(ConfigError, setattr, session, "firstPacketTimeout", -2)

    def test_serverAndClientSessions(self) -> None:
        """
        A Server's sessions get the server defaults, a Client's the client
        ones, also when the config passed sets other settings.
        """
        reactor = MemoryReactorClock()
        seen: list[Any] = []

        def newSession(session: Any) -> None:
            echoSession(session)
            seen.append((session.readIdleTimeout, session.firstPacketTimeout, session.writeTimeout))

        serverOn(reactor, ["tcp:0"], newSession, config=SessionConfig(maxMsgLen=100))
        accept(reactor)
        client = Client("tcp:127.0.0.1:1", newSession, reactor=reactor, config=SessionConfig(maxMsgLen=100))
        session = Session(clock=reactor, wheel=client.wheel, config=client.config, owner=client._slots[0])
        session.makeConnection(StringTransport())
        self.assertEqual(seen, [(300.0, 60.0, 60.0), (0.0, 0.0, 60.0)])

    def test_udpPeersKeepTheirSixtySeconds(self) -> None:
        """
        A UDP peer's session gets 60 s when the server's config leaves
        readIdleTimeout unset (or 0), the config's value when it sets one.
        """
        for config, expected in [(SessionConfig(), DEFAULT_PEER_IDLE), (SessionConfig(readIdleTimeout=0), 60.0),
                                 (SessionConfig(readIdleTimeout=7), 7.0)]:
            reactor = FakeUDPReactor()
            server = serverOn(reactor, ["udp:0"], config=config)
            port = reactor.udpPorts[0]
            port.protocol.datagramReceived(hello(b"x"), ("127.0.0.1", 5000))
            (session,) = server.sessions()
            self.assertEqual((session.readIdleTimeout, session.firstPacketTimeout), (expected, 60.0))
            server.stopService()
