"""
Unit tests of L{txgetty.config}: the defaults of each role, the check of
each setting (L{CHECKS <txgetty.config.CHECKS>}), the order of low and high
marks, and the listener settings.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from txgetty.client import Client
from txgetty.codec import HelloCodec
from txgetty.config import (
    CHECKS,
    DEFAULT_FIRST_PACKET_TIMEOUT,
    DEFAULT_MAX_PACKETS_PER_TURN,
    DEFAULT_READ_IDLE_TIMEOUT,
    DEFAULT_WRITE_TIMEOUT,
    HANDLER_ERROR_POLICIES,
    LISTENER_CHECKS,
    ORDERED_PAIRS,
    ROLE_DEFAULTS,
    SessionConfig,
    checkListenerSetting,
    checkOrder,
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


class CheckTests(SynchronousTestCase):
    """
    Each setting is checked when a config is made, and a refusal names the
    setting and the value.
    """

    def test_everyFieldChecked(self) -> None:
        """
        L{CHECKS} has one check per field of L{SessionConfig}, no more.
        """
        self.assertEqual({f.name for f in fields(SessionConfig)}, set(CHECKS))

    def test_refusals(self) -> None:
        """
        Wrong types and out-of-range values are L{ConfigError}s naming the
        setting: C{True} is not a number, NaN and negatives are not seconds,
        0 is refused where it cannot mean "off", TCP keep-alive periods stop
        at the kernel's 32767 s.
        """
        for name, value, needle in (
            ("maxMsgLen", 0, "positive number of bytes"),
            ("maxMsgLen", True, "positive number of bytes"),
            ("cronPeriod", 0, "greater than 0"),
            ("waitTime", -1, "0 or more"),
            ("readIdleTimeout", float("nan"), "0 or more"),
            ("packetTimeout", "10", "number of seconds"),
            ("openTimeout", True, "number of seconds"),
            ("keepAlivePeriod", 32768, "at most 32767"),
            ("tcpNoDelay", 1, "True or False"),
            ("writeHighMark", 0, "a positive integer"),
            ("writeLowMark", -1, "an integer, 0 or more"),
            ("maxPacketsPerTurn", 1.5, "an integer, 0 or more"),
            ("handlerErrorPolicy", "ignore", ", ".join(HANDLER_ERROR_POLICIES)),
        ):
            with self.assertRaises(ConfigError) as ctx:
                SessionConfig(**{name: value})
            self.assertIn(name, str(ctx.exception))
            self.assertIn(needle, str(ctx.exception), (name, value))

    def test_offValues(self) -> None:
        """
        0 switches the timeouts off and is accepted; the checks hand back
        floats for seconds.
        """
        config = SessionConfig(waitTime=0, packetTimeout=0, openTimeout=0, writeTimeout=0, readIdleTimeout=0)
        self.assertEqual((config.waitTime, config.readIdleTimeout), (0.0, 0.0))
        self.assertIsInstance(SessionConfig(cronPeriod=2).cronPeriod, float)

    def test_frozen(self) -> None:
        """
        A config cannot be changed once made (a server shares one among its
        sessions); C{replace} makes another, checked again.
        """
        config = SessionConfig()
        with self.assertRaises(AttributeError):
            config.maxMsgLen = 5  # type: ignore[misc]


class OrderTests(SynchronousTestCase):
    """
    Low marks stay at or below their high marks (L{ORDERED_PAIRS}).
    """

    def test_configRefusesCrossedMarks(self) -> None:
        """
        A config whose low mark exceeds its high mark is refused, naming
        both (the other pairs kept in order).
        """
        for low, high in ORDERED_PAIRS:
            values: dict[str, Any] = {"writeLowMark": 0, "backlogLowMark": 0, low: 1000, high: 999}
            with self.assertRaises(ConfigError) as ctx:
                SessionConfig(**values)
            self.assertIn(f"{low} (1000) must not exceed {high} (999)", str(ctx.exception))

    def test_changeOrder(self) -> None:
        """
        Changing one mark of a pair past the other says which one to change
        first; a change within bounds passes.
        """
        current = {"writeLowMark": 10, "writeHighMark": 20, "maxPendingBytes": 30}.__getitem__
        with self.assertRaises(ConfigError) as ctx:
            checkOrder("writeLowMark", 25, current)
        self.assertIn("raise writeHighMark first", str(ctx.exception))
        with self.assertRaises(ConfigError) as ctx:
            checkOrder("writeHighMark", 5, current)
        self.assertIn("lower writeLowMark first", str(ctx.exception))
        checkOrder("writeHighMark", 25, current)


class RoleTests(SynchronousTestCase):
    """
    L{SessionConfig.forRole}.
    """

    def test_unknownRole(self) -> None:
        """
        Only the roles of L{ROLES <txgetty.config.ROLES>} exist.
        """
        with self.assertRaises(ConfigError) as ctx:
            SessionConfig().forRole("peer")
        self.assertIn("server, client", str(ctx.exception))

    def test_nothingUnset(self) -> None:
        """
        A config that sets every role-dependent setting is its own version
        for any role.
        """
        config = SessionConfig(**{name: 5.0 for name in ROLE_DEFAULTS})
        self.assertIs(config.forRole("client"), config)
        self.assertIs(config.forRole("server"), config)


class ListenerSettingTests(SynchronousTestCase):
    """
    L{checkListenerSetting}: C{maxSessions} and C{backlog}, as given to a
    server or as text in a listener's description.
    """

    def test_text(self) -> None:
        """
        Text is read as a whole number; C{maxSessions} may be 0 (no limit),
        C{backlog} may not.
        """
        self.assertEqual(checkListenerSetting("maxSessions", "0"), 0)
        self.assertEqual(checkListenerSetting("backlog", 128), 128)
        self.assertEqual(set(LISTENER_CHECKS), {"maxSessions", "backlog"})

    def test_refusals(self) -> None:
        """
        A refusal names the setting, the value and the description it came
        from.
        """
        with self.assertRaises(ConfigError) as ctx:
            checkListenerSetting("backlog", "many", "tcp:0:backlog=many")
        self.assertEqual(str(ctx.exception), "backlog must be a whole number, got 'many' (in 'tcp:0:backlog=many')")
        with self.assertRaises(ConfigError) as ctx:
            checkListenerSetting("backlog", "0", "tcp:0:backlog=0")
        self.assertIn("backlog must be a positive integer, got 0 (in 'tcp:0:backlog=0')", str(ctx.exception))


class TableTests(SynchronousTestCase):
    """
    The settings table (L{SESSION_SETTINGS <txgetty.config.SESSION_SETTINGS>},
    L{LISTENER_SETTINGS <txgetty.config.LISTENER_SETTINGS>}) is the one
    declaration: L{SessionConfig}, the session's properties and L{ISession}
    agree with it row by row.
    """

    def test_sessionConfigFields(self) -> None:
        """
        SessionConfig has one field per session row, in the same order, with
        the row's default and a type of the row's check.
        """
        import typing

        from txgetty.config import SESSION_SETTINGS

        hints = typing.get_type_hints(SessionConfig)
        self.assertEqual([f.name for f in fields(SessionConfig)], [row.name for row in SESSION_SETTINGS])
        for f, row in zip(fields(SessionConfig), SESSION_SETTINGS):
            self.assertEqual(f.default, row.default, row.name)
            kind = row.check.kind
            self.assertIn(kind, typing.get_args(hints[f.name]) or (hints[f.name],), row.name)
            self.assertEqual(row.scope, "session")

    def test_checksFromRows(self) -> None:
        """
        CHECKS and LISTENER_CHECKS hold one check per row; each refuses a
        wrong type with a message naming the setting.
        """
        from txgetty.config import LISTENER_SETTINGS, SESSION_SETTINGS

        self.assertEqual(list(CHECKS), [row.name for row in SESSION_SETTINGS])
        self.assertEqual(list(LISTENER_CHECKS), [row.name for row in LISTENER_SETTINGS])
        for name, check in list(CHECKS.items()) + list(LISTENER_CHECKS.items()):
            with self.assertRaises(ConfigError) as ctx:
                check(object())
            self.assertTrue(str(ctx.exception).startswith(f"{name} must be "), str(ctx.exception))

    def test_roleDefaultsFromRows(self) -> None:
        """
        ROLE_DEFAULTS is the rows' per-role defaults; those rows default to
        None in a config and give the server's value to the option.
        """
        from txgetty.config import SESSION_SETTINGS

        rows = [row for row in SESSION_SETTINGS if row.roles]
        self.assertEqual(ROLE_DEFAULTS, {row.name: dict(row.roles or {}) for row in rows})
        for row in rows:
            self.assertIsNone(row.default)
            self.assertEqual(row.optionDefault, ROLE_DEFAULTS[row.name]["server"])

    def test_sessionPropertiesAndISession(self) -> None:
        """
        ISession's setting attributes, the session's checked properties
        (txgetty.session.settings) and the slots of the settings object the
        sessions of one config share are exactly the session rows.
        """
        from txgetty.config import SESSION_SETTINGS
        from txgetty.interfaces import ISession
        from txgetty.session.settings import SessionOptionsMixin, SessionSettings

        names = {row.name for row in SESSION_SETTINGS}
        properties = {n for n, v in vars(SessionOptionsMixin).items() if isinstance(v, property)}
        self.assertEqual(properties, names)
        self.assertEqual(set(SessionSettings.__slots__) - {"shared"}, names)
        self.assertTrue(names <= set(ISession.names(all=True)), names - set(ISession.names(all=True)))

    def test_documentedFields(self) -> None:
        """
        SessionConfig's docstring has an C{@ivar} for each row.
        """
        from txgetty.config import SESSION_SETTINGS

        doc = SessionConfig.__doc__ or ""
        for row in SESSION_SETTINGS:
            self.assertIn(f"@ivar {row.name}:", doc)
