"""
Tests for C{twistd txgetty}: the plugin, its options and the service it
makes; and for the endpoint descriptions it accepts.
"""

from __future__ import annotations

from typing import Any
import resource
import sys
import types

from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from txgetty.codec import LengthPrefixedCodec, LineCodec
from txgetty.server import Server
from txgetty.testing import RecordingListener
from txgetty.tools.tap import DEFAULT_LISTEN, MAX_OPEN_FILES, Options, makeService, raiseOpenFileLimit

from ...support.processes import parse


class TwistdOptionTests(SynchronousTestCase):
    """
    twistd txgetty has an option for every new limit, with the defaults.
    """

    def test_defaults(self) -> None:
        """
        Without options: the server defaults, and the Server gets the
        listener defaults.
        """
        options = Options()
        options.parseOptions(["--no-rpc"])
        config = options["config"]
        self.assertEqual(
            (config.readIdleTimeout, config.firstPacketTimeout, config.writeTimeout, config.maxPacketsPerTurn,
             options["max-sessions"], options["backlog"]),
            (300.0, 60.0, 60.0, 256, 10000, 65535),
        )

    def test_given(self) -> None:
        """
        The options reach the config and the Server; a :count-header codec
        works.
        """
        options = Options()
        options.parseOptions(["--no-rpc", "--listen", "tcp:0", "--first-packet-timeout", "5", "--write-timeout", "7",
                              "--max-packets-per-turn", "0", "--max-sessions", "12", "--backlog", "99",
                              "--read-idle-timeout", "0", "--codec", "hello:count-header"])
        config = options["config"]
        self.assertEqual((config.firstPacketTimeout, config.writeTimeout, config.maxPacketsPerTurn,
                          config.readIdleTimeout), (5.0, 7.0, 0, 0.0))
        self.assertTrue(options["codecObject"].countHeader)
        reactor = MemoryReactorClock()
        top = makeService(options, reactor)
        (server,) = [s for s in top if isinstance(s, Server)]
        self.assertEqual((server.maxSessions, server.backlog), (12, 99))
        server.startService()
        self.assertEqual(reactor.tcpServers[0][2], 99)
        server.stopService()

    def test_badValues(self) -> None:
        """
        Bad values stop twistd with a message naming the option.
        """
        for args, words in [(["--max-sessions", "-1"], "--max-sessions takes a whole number of connections, 0 or more"),
                            (["--backlog", "0"], "--backlog takes a whole number of connections, 1 or more"),
                            (["--write-timeout", "-1"], "--write-timeout takes a number of seconds, 0 or more"),
                            (["--first-packet-timeout", "x"], "--first-packet-timeout takes a number of seconds"),
                            (["--max-packets-per-turn", "-5"], "--max-packets-per-turn takes a whole number of packets"),
                            (["--listen", "tcp:0:maxSessions=-2"], "maxSessions must be an integer, 0 or more, got -2"),
                            (["--listen", "tcp:99999:maxSessions=3"],
                             "the port of 'tcp:99999:maxSessions=3' must be a number 0-65535")]:
            e = self.assertRaises(usage.UsageError, Options().parseOptions, ["--no-rpc"] + args)
            self.assertIn(words, str(e))


class PluginTests(SynchronousTestCase):
    """
    The twistd plugin is found and points at L{txgetty.tools.tap}.
    """

    def test_found(self) -> None:
        """
        twistd's plugin scan finds C{txgetty} (from this checkout or an
        install), with our options class.
        """
        makers = {m.tapname: m for m in getPlugins(IServiceMaker)}
        self.assertIn("txgetty", makers)
        self.assertIs(makers["txgetty"].options, Options)


class OptionsTests(SynchronousTestCase):
    """
    Tests for L{Options}.
    """

    def test_defaults(self) -> None:
        """
        With no options: hello codec, echo, tcp 127.0.0.1:8090, default limits.
        """
        options = parse()
        self.assertEqual(options["listen"], [DEFAULT_LISTEN])
        self.assertEqual(DEFAULT_LISTEN, "tcp:8090:interface=127.0.0.1")
        codec = options["codecObject"]
        self.assertEqual((codec.size, codec.byteorder), (4, "little"))
        self.assertIsNone(options["newSession"])
        self.assertEqual(options["config"].maxMsgLen, 1024 * 1024)
        self.assertIsNone(options["tls"])

    def test_repeatableListenAndLimits(self) -> None:
        """
        --listen repeats; limits and codec are taken.
        """
        options = parse(
            "--listen", "tcp:0:interface=127.0.0.1", "--listen", "unix:/tmp/x.sock",
            "--max-msg-len", "4096", "--cron-period", "2.5", "--codec", "length:2",
            "--read-idle-timeout", "30", "--packet-timeout", "0", "--wait-time", "1",
        )
        self.assertEqual(options["listen"], ["tcp:0:interface=127.0.0.1", "unix:/tmp/x.sock"])
        config = options["config"]
        self.assertEqual(
            (config.maxMsgLen, config.cronPeriod, config.readIdleTimeout, config.packetTimeout, config.waitTime),
            (4096, 2.5, 30.0, 0.0, 1.0),
        )
        self.assertIsInstance(options["codecObject"], LengthPrefixedCodec)

    def test_badValuesNamed(self) -> None:
        """
        Bad values stop with a message naming the option.
        """
        for argv, needle in (
            (["--max-msg-len", "0"], "--max-msg-len"),
            (["--cron-period", "-1"], "--cron-period"),
            (["--codec", "morse"], "morse"),
            (["--listen", "bogus:1"], "bogus:1"),
            (["--wheel-tick", "0"], "--wheel-tick"),
            (["--tls-key", "k.pem"], "--tls-cert"),
            (["--tls-key", "k.pem", "--tls-cert", "c.pem"], "--listen tls:PORT"),
            (["--listen", "tls:0"], "--tls-key"),
        ):
            with self.assertRaises(UsageError) as ctx:
                parse(*argv)
            self.assertIn(needle, str(ctx.exception), argv)

    def test_app(self) -> None:
        """
        --app MODULE:CALLABLE loads the user's callback; sessions get the
        --codec codec before it runs.
        """
        module = types.ModuleType("txgetty_test_app")
        seen = []

        def newSession(session: object) -> None:
            seen.append(session.codec)
            session.listener = RecordingListener()

        module.newSession = newSession  # type: ignore[attr-defined]
        sys.modules[module.__name__] = module
        self.addCleanup(sys.modules.pop, module.__name__)
        options = parse("--app", "txgetty_test_app:newSession", "--codec", "line")

        class Fake:
            codec = None
            listener = None

        fake = Fake()
        options["newSession"](fake)
        self.assertIsInstance(seen[0], LineCodec)
        self.assertIsInstance(fake.listener, RecordingListener)

    def test_appErrors(self) -> None:
        """
        A wrong --app says what is wrong: form, import, attribute, callable.
        """
        for spec, needle in (
            ("nocolon", "MODULE:CALLABLE"),
            ("txgetty_no_such_module:x", "cannot import"),
            ("txgetty.tools.tap:nothingHere", "no attribute"),
            ("txgetty.tools.tap:DEFAULT_LISTEN", "not callable"),
        ):
            with self.assertRaises(UsageError) as ctx:
                parse("--app", spec)
            self.assertIn(needle, str(ctx.exception))


class MakeServiceTests(SynchronousTestCase):
    """
    Tests for L{makeService}.
    """

    def test_echoServer(self) -> None:
        """
        makeService gives a L{Server} that listens on every --listen endpoint
        when started.
        """
        reactor = MemoryReactorClock()
        options = parse("--listen", "tcp:0:interface=127.0.0.1", "--listen", "tcp:0:interface=\\:\\:1", "--no-rpc")
        service = makeService(options, reactor=reactor)
        [server] = list(service)
        self.assertIsInstance(server, Server)
        service.startService()
        self.assertEqual([(p[0], p[3]) for p in reactor.tcpServers], [(0, "127.0.0.1"), (0, "::1")])
        self.successResultOf(service.stopService())

    def test_rpcServer(self) -> None:
        """
        By default the service tree also holds an RPC server on
        tcp:8091:interface=127.0.0.1 with the --service services (the demo
        services are off with --service; tests.unit.tools.test_tap_rpc has every
        combination), and a task pool for its blocking methods.
        """
        from txgetty.rpc import RpcServer
        from txgetty.taskpool import TaskPool

        module = types.ModuleType("txgetty_test_services")

        class Calc:
            def add(self, a: int, b: int) -> int:
                return a + b

        module.Calc = Calc  # type: ignore[attr-defined]
        sys.modules[module.__name__] = module
        self.addCleanup(sys.modules.pop, module.__name__)
        options = parse("--service", "txgetty_test_services:Calc", "--service", "Sum=txgetty_test_services:Calc")
        [server, holder] = list(makeService(options, reactor=MemoryReactorClock()))
        [pool, rpc] = list(holder)
        self.assertIsInstance(pool, TaskPool)
        self.assertIsInstance(rpc, RpcServer)
        self.assertIs(rpc.taskPool, pool)
        self.assertEqual(sorted(rpc.registry.names()), ["Calc", "Health", "Sum"])
        self.assertEqual(options["rpc-listen"], ["tcp:8091:interface=127.0.0.1"])

    def test_serviceErrors(self) -> None:
        """
        A --service that cannot load, or registers badly, stops twistd with
        a message saying why.
        """
        for spec, needle in (
            ("nocolon", "MODULE:OBJECT"),
            ("txgetty_no_such_module:X", "cannot import"),
            ("txgetty.tools.tap:DEFAULT_LISTEN", "cannot register a str"),
        ):
            with self.assertRaises(UsageError) as ctx:
                parse("--service", spec)
            self.assertIn(needle, str(ctx.exception), spec)


class TaskPoolOptionTests(SynchronousTestCase):
    """
    --task-pool and the flow-control options.
    """

    def test_poolService(self) -> None:
        """
        --task-pool N gives a service tree that starts an N-thread pool
        before the server, which hands it every session's packets.
        """
        from twisted.application.service import MultiService

        from txgetty.taskpool import TaskPool

        options = parse("--listen", "tcp:0:interface=127.0.0.1", "--task-pool", "3", "--task-pool-unordered")
        service = makeService(options, reactor=MemoryReactorClock())
        self.assertIsInstance(service, MultiService)
        pool, server, rpc = list(service)
        self.assertIs(list(rpc)[0].taskPool, pool)
        self.assertIsInstance(pool, TaskPool)
        self.assertEqual((pool.size, pool.ordered), (3, False))
        self.assertIs(server.taskPool, pool)

    def test_flowOptions(self) -> None:
        """
        The water marks and limits reach the session config; a low mark
        above its high mark is refused naming the options.
        """
        config = parse("--write-high-mark", "1000", "--write-low-mark", "10", "--max-pending-bytes", "5000",
                       "--backlog-high-mark", "9", "--backlog-low-mark", "3",
                       "--no-pause-reading-when-unwritable")["config"]
        self.assertEqual(
            (config.writeHighMark, config.writeLowMark, config.maxPendingBytes, config.backlogHighMark,
             config.backlogLowMark, config.pauseReadingWhenUnwritable),
            (1000, 10, 5000, 9, 3, False),
        )
        with self.assertRaises(UsageError) as ctx:
            parse("--write-low-mark", "100000")
        self.assertIn("--write-low-mark", str(ctx.exception))
        self.assertRaises(UsageError, parse, "--task-pool", "-1")


class OpenFileLimitTests(SynchronousTestCase):
    """
    L{raiseOpenFileLimit}, which C{twistd txgetty} runs so that a server can
    hold more than ~1,000 sessions.
    """

    def limits(self, soft: int, hard: int, fails: bool = False) -> tuple[list, list]:
        """
        @return: fake getrlimit/setrlimit arguments and the calls to set.
        """
        calls: list = []

        def setrlimit(which: int, value: tuple[int, int]) -> None:
            if fails:
                raise ValueError("not allowed")
            calls.append((which, value))

        return [lambda which: (soft, hard), setrlimit], calls

    def test_raisedToHard(self) -> None:
        """
        A soft limit below the hard one is raised to it, and logged.
        """
        logged: list = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        fakes, calls = self.limits(1024, 65536)
        self.assertEqual(raiseOpenFileLimit(*fakes), 65536)
        self.assertEqual(calls, [(resource.RLIMIT_NOFILE, (65536, 65536))])
        text = " ".join(e["log_format"].format(**e) for e in logged if "log_format" in e)
        self.assertIn("raised the open-file limit from 1024 to 65536", text)

    def test_unlimitedHard(self) -> None:
        """
        An unlimited hard limit raises the soft one to L{MAX_OPEN_FILES}.
        """
        fakes, calls = self.limits(1024, resource.RLIM_INFINITY)
        self.assertEqual(raiseOpenFileLimit(*fakes), MAX_OPEN_FILES)
        self.assertEqual(calls, [(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, resource.RLIM_INFINITY))])

    def test_alreadyHigh(self) -> None:
        """
        A soft limit at the hard one is left alone.
        """
        fakes, calls = self.limits(20000, 20000)
        self.assertEqual(raiseOpenFileLimit(*fakes), 20000)
        self.assertEqual(calls, [])

    def test_refused(self) -> None:
        """
        When the system refuses, the old limit stays and a warning says how
        many connections that allows and what to do.
        """
        logged: list = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        fakes, _ = self.limits(1024, 65536, fails=True)
        self.assertEqual(raiseOpenFileLimit(*fakes), 1024)
        text = " ".join(e["log_format"].format(**e) for e in logged if "log_format" in e)
        self.assertIn("about 1024 connections", text)
        self.assertIn("ulimit -n", text)


class OptionCheckTests(SynchronousTestCase):
    """
    Every option with a value is checked by its row of the declaration
    table (C{optParameters}); a bad value stops with one line naming the
    option, the value and what it takes.  Listener ports are checked too.
    """

    def refused(self, *argv: str) -> str:
        """
        @param argv: options that must be refused.
        @return: the message.
        """
        with self.assertRaises(UsageError) as ctx:
            parse(*argv)
        message = str(ctx.exception)
        self.assertNotIn("\n", message)
        self.assertNotIn("Parameter type enforcement failed", message)
        return message

    def test_everyParameterChecked(self) -> None:
        """
        Every row of optParameters that converts its value does it through
        the table's named checker (none with a bare int or float).
        """
        from txgetty.tools.tap import _NamedCoercer

        for row in Options.optParameters:
            if len(row) > 4 and row[4] is not None:
                self.assertIsInstance(row[4], _NamedCoercer, row[0])
                self.assertEqual(row[4].name, row[0])

    def test_badNumbersNameTheOption(self) -> None:
        """
        A value that is not a number, or out of range, names the option.
        """
        for argv, needle in (
            (["--cron-period", "abc"], "--cron-period takes a number of seconds, more than 0, got 'abc'"),
            (["--cron-period", "0"], "--cron-period takes a number of seconds, more than 0, got '0'"),
            (["--read-idle-timeout", "-1"], "--read-idle-timeout takes a number of seconds, 0 or more"),
            (["--packet-timeout", "nan"], "--packet-timeout takes"),
            (["--open-timeout", "inf"], "--open-timeout takes"),
            (["--wheel-tick", "0"], "--wheel-tick takes a number of seconds, more than 0"),
            (["--max-msg-len", "1.5"], "--max-msg-len takes a whole number of bytes, 1 or more, got '1.5'"),
            (["--task-pool", "-1"], "--task-pool takes a whole number of threads, 0 or more"),
            (["--rpc-max-in-flight", "0"], "--rpc-max-in-flight takes a whole number"),
            (["--rpc-idle-timeout", "x"], "--rpc-idle-timeout takes a number of seconds"),
        ):
            self.assertIn(needle, self.refused(*argv), argv)

    def test_goodEdgeValues(self) -> None:
        """
        0 where it means "off", and exact numbers, are accepted.
        """
        options = parse("--read-idle-timeout", "0", "--packet-timeout", "0", "--task-pool", "0",
                        "--cron-period", "0.5", "--rpc-idle-timeout", "0")
        self.assertEqual((options["read-idle-timeout"], options["task-pool"], options["cron-period"]), (0.0, 0, 0.5))

    def test_badPortsRefused(self) -> None:
        """
        Listener ports outside 0-65535 (or not numbers) are refused at
        parse time, naming the option and the endpoint; port 0 (any free
        port) is accepted.
        """
        for option, description in (
            ("--listen", "tcp:99999"), ("--listen", "tcp:-1"), ("--listen", "tcp6:port=65536"),
            ("--listen", "udp:70000"), ("--listen", "ws://127.0.0.1:99999/"), ("--rpc-listen", "tcp:99999"),
            ("--listen", "ws://127.0.0.1:abc/"),
        ):
            message = self.refused(option, description)
            self.assertIn(f"{option}: the port of {description!r} must be a number 0-65535", message)
        options = parse("--listen", "tcp:0", "--listen", "udp:0", "--rpc-listen", "tcp:0")
        self.assertEqual(options["listen"], ["tcp:0", "udp:0"])


class ListenErrorTests(SynchronousTestCase):
    """
    L{describeListenError}: one line, what failed, why, what to change.
    """

    def error(self, number: int, port: Any = 8090, interface: str | None = "127.0.0.1") -> Any:
        """
        @return: a L{CannotListenError} with that errno.
        """
        import os

        from twisted.internet.error import CannotListenError

        return CannotListenError(interface, port, OSError(number, os.strerror(number)))

    def test_defaultRPCPortInUse(self) -> None:
        """
        A clash on the default RPC port says so and names --rpc-listen and
        --no-rpc.
        """
        import errno

        from txgetty.tools.tap import DEFAULT_RPC_LISTEN, describeListenError

        line = describeListenError(self.error(errno.EADDRINUSE, 8091), "--rpc-listen", [DEFAULT_RPC_LISTEN])
        self.assertEqual(line, (
            "txgetty: cannot serve RPC on tcp:8091:interface=127.0.0.1: port 8091 (the default RPC port) is "
            "already in use by another process (another twistd txgetty?); stop it, serve RPC on another port "
            "with --rpc-listen tcp:PORT:interface=127.0.0.1, or turn RPC off with --no-rpc"
        ))

    def test_defaultPortInUse(self) -> None:
        """
        A clash on the default packet port names --listen.
        """
        import errno

        from txgetty.tools.tap import describeListenError

        line = describeListenError(self.error(errno.EADDRINUSE), "--listen", [DEFAULT_LISTEN])
        self.assertIn("port 8090 (the default port) is already in use", line)
        self.assertIn("--listen tcp:PORT", line)

    def test_otherCauses(self) -> None:
        """
        Permission, a foreign address and a UNIX socket file each get their
        own words; the endpoint is the one whose port failed.
        """
        import errno

        from txgetty.tools.tap import describeListenError

        line = describeListenError(self.error(errno.EACCES, 80), "--listen", ["tcp:80", "tcp:9000"])
        self.assertIn("cannot listen on tcp:80: permission denied (ports below 1024", line)
        line = describeListenError(self.error(errno.EADDRNOTAVAIL, 9000, "10.9.9.9"), "--listen", ["tcp:9000:interface=10.9.9.9"])
        self.assertIn("10.9.9.9 is not an address of this host; fix interface=", line)
        line = describeListenError(self.error(errno.EADDRINUSE, "/tmp/s.sock", None), "--listen", ["unix:/tmp/s.sock"])
        self.assertIn("the socket file /tmp/s.sock exists", line)
