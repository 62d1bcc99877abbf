"""
Unit tests of L{txgetty.tools.options}: the twistd options of
L{txgetty.tools.tap} are made from the rows of the settings table (names,
defaults, help, coercion, keywords), the listener settings reach the RPC
listeners, and docs/options.md's tables are the generated ones.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from txgetty.config import LISTENER_SETTINGS, SCOPES, SESSION_SETTINGS, Flag, Number, SessionConfig
from txgetty.rpc import RpcServer
from txgetty.server import Server
from txgetty.tools import options as T
from txgetty.tools.tap import Options, makeService

from ...support.docs import DOCS
from ...support.processes import parse


def services(options: Options, kind: type) -> list[Any]:
    """
    @param options: parsed options.
    @param kind: a service class.
    @return: the services of that class in the tree C{makeService} builds.
    """
    found: list[Any] = []

    def walk(service: Any) -> None:
        if isinstance(service, kind):
            found.append(service)
        for child in getattr(service, "services", []):
            walk(child)

    walk(makeService(options, reactor=MemoryReactorClock()))
    return found


class TableTests(SynchronousTestCase):
    """
    The rows of L{OPTIONS <txgetty.tools.options.OPTIONS>}.
    """

    def test_unique(self) -> None:
        """
        Every row has a scope of L{SCOPES}, and no two rows share a name or
        an option.
        """
        names = [row.name for row in T.OPTIONS]
        opts = [row.option for row in T.OPTIONS]
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual(len(opts), len(set(opts)))
        self.assertTrue({row.scope for row in T.OPTIONS} <= set(SCOPES))

    def test_sessionAndListenerRows(self) -> None:
        """
        The session and listener rows of L{txgetty.config} are all in the
        table, each with an option.
        """
        for row in SESSION_SETTINGS + LISTENER_SETTINGS:
            self.assertIs(T.option(row.option), row, row.name)

    def test_processRows(self) -> None:
        """
        Every other row is a process setting.
        """
        others = [row for row in T.OPTIONS if row not in SESSION_SETTINGS + LISTENER_SETTINGS]
        self.assertEqual({row.scope for row in others}, {"process"})


class OptionsFromTableTests(SynchronousTestCase):
    """
    C{tap.Options} takes its parameters, flags and repeatable options from
    the table, and nothing else.
    """

    def test_parameters(self) -> None:
        """
        C{optParameters} is one row per table row with a value: its option,
        default (a server's, for a role-dependent setting) and help.
        """
        rows = {p[0]: p for p in Options.optParameters}
        expected = [r for r in T.OPTIONS if not isinstance(r.check, Flag) and not getattr(r.check, "many", False)]
        self.assertEqual(list(rows), [r.option for r in expected])
        for row in expected:
            self.assertEqual(rows[row.option][2:4], [row.optionDefault, row.help], row.option)
        self.assertEqual(rows["read-idle-timeout"][2], 300.0)

    def test_flags(self) -> None:
        """
        C{optFlags} is one row per L{Flag} row.
        """
        self.assertEqual([f[0] for f in Options.optFlags],
                         [r.option for r in T.OPTIONS if isinstance(r.check, Flag)])

    def test_repeatable(self) -> None:
        """
        Each repeatable row is an C{opt_} method whose help is the row's, and
        collects every value given.
        """
        for row in T.repeatable():
            method = getattr(Options, "opt_" + row.option.replace("-", "_"))
            self.assertEqual(method.__doc__, row.help)
        options = parse("--listen", "tcp:0", "--listen", "tcp:0:interface=127.0.0.1", "--no-rpc")
        self.assertEqual(options["listen"], ["tcp:0", "tcp:0:interface=127.0.0.1"])

    def test_defaultsMakeDefaultConfig(self) -> None:
        """
        With no option, the config is a server's default config.
        """
        self.assertEqual(parse()["config"], SessionConfig().forRole("server"))

    def test_everySessionOptionReachesTheConfig(self) -> None:
        """
        Each session option sets its setting: a value option its value, a
        flag the opposite of its default.
        """
        for row in SESSION_SETTINGS:
            if isinstance(row.check, Flag):
                argv, want = [f"--{row.option}"], not row.default
            elif isinstance(row.check, Number):
                want = row.optionDefault + 1
                argv = [f"--{row.option}", str(want)]
                if row.name in ("writeLowMark", "backlogLowMark"):
                    want = row.optionDefault - 1
                    argv = [f"--{row.option}", str(want)]
            else:
                argv, want = [f"--{row.option}", "continue"], "continue"
            config = parse(*argv)["config"]
            self.assertEqual(getattr(config, row.name), want, argv)

    def test_badValueNamesTheOption(self) -> None:
        """
        Every number option refuses text that is not a number with one line
        naming the option and what it takes.
        """
        for row in T.OPTIONS:
            if isinstance(row.check, Number):
                with self.assertRaises(UsageError) as ctx:
                    parse(f"--{row.option}", "abc")
                self.assertEqual(str(ctx.exception), f"--{row.option} takes {row.check.what()}, got 'abc'")

    def test_upperBound(self) -> None:
        """
        The upper bound of a row's check is the option's too.
        """
        with self.assertRaises(UsageError) as ctx:
            parse("--keepalive-period", "40000")
        self.assertIn("--keepalive-period takes a number of seconds, more than 0, at most 32767", str(ctx.exception))

    def test_crossedMarksNameTheOptions(self) -> None:
        """
        A check across two settings names both options.
        """
        with self.assertRaises(UsageError) as ctx:
            parse("--write-low-mark", "100000")
        self.assertIn("--write-low-mark (writeLowMark)", str(ctx.exception))
        self.assertIn("--write-high-mark (writeHighMark)", str(ctx.exception))


class ListenerSettingsTests(SynchronousTestCase):
    """
    C{--max-sessions} and C{--backlog} apply to the C{--listen} servers and
    to the RPC listeners.
    """

    def test_bothServers(self) -> None:
        """
        The packet server and the RPC server get the values given.
        """
        options = parse("--max-sessions", "7", "--backlog", "9", "--listen", "tcp:0")
        [server] = [s for s in services(options, Server) if s.name == "txgetty"]
        [rpc] = services(options, RpcServer)
        self.assertEqual((server.maxSessions, server.backlog), (7, 9))
        self.assertEqual((rpc.server.maxSessions, rpc.server.backlog), (7, 9))

    def test_rpcListensWithTheBacklog(self) -> None:
        """
        The RPC listener asks the reactor for the C{--backlog} given.
        """
        reactor = MemoryReactorClock()
        options = parse("--backlog", "33", "--listen", "tcp:0", "--rpc-listen", "tcp:0:interface=127.0.0.1")
        top = makeService(options, reactor=reactor)
        top.startService()
        self.addCleanup(top.stopService)
        self.assertEqual([backlog for _, _, backlog, _ in reactor.tcpServers], [33, 33])

    def test_rpcDefaults(self) -> None:
        """
        Without the options, the RPC listeners get the table's defaults.
        """
        [rpc] = services(parse("--listen", "tcp:0"), RpcServer)
        self.assertEqual((rpc.server.maxSessions, rpc.server.backlog), (10_000, 65535))

    def test_rpcListenChecked(self) -> None:
        """
        A bad RPC listener is refused before anything starts.
        """
        with self.assertRaises(UsageError) as ctx:
            parse("--rpc-listen", "tcp:0:backlog=0")
        self.assertIn("--rpc-listen: backlog must be a positive integer", str(ctx.exception))


class DocsTests(SynchronousTestCase):
    """
    docs/options.md's option and settings tables are generated from the
    table (C{python -m txgetty.tools.options --write docs/options.md}).
    """

    def test_upToDate(self) -> None:
        """
        The committed page is what the generator makes of it, and it has
        both generated regions.
        """
        text = (DOCS / "options.md").read_text(encoding="utf-8")
        self.assertEqual(sorted(T.regions(text)), sorted(T.TABLES))
        self.assertEqual(T.render(text), text, "docs/options.md is out of date: "
                         "python -m txgetty.tools.options --write docs/options.md")

    def test_everyOptionHasARow(self) -> None:
        """
        The option table has one row per option of the table.
        """
        table = T.optionTable()
        for row in T.OPTIONS:
            self.assertEqual(sum(line.startswith(f"| `--{row.option}") and line.split("`")[1].split()[0] ==
                                 f"--{row.option}" for line in table.splitlines()), 1, row.option)

    def test_settingTable(self) -> None:
        """
        The settings table shows each session setting's default and range,
        with the settings it must not cross.
        """
        table = T.settingTable()
        self.assertIn("| `cronPeriod` | `60.0` | > 0 | seconds between two `onCron` calls |", table)
        self.assertIn("| `handlerErrorPolicy` | `\"close\"` | `\"close\"`, `\"continue\"` |", table)
        self.assertIn("| `writeLowMark` | `32768` | int \u2265 0, \u2264 `writeHighMark` |", table)
        self.assertIn("| `readIdleTimeout` | `None`: 300 s for a `Server`'s sessions, 0 (off) for a `Client`'s |",
                      table)

    def test_main(self) -> None:
        """
        C{--markdown} prints the tables with their markers; C{--check} is 0
        on the committed page and 1 on a stale one; a bad command line is 2.
        """
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertEqual(T.main(["--markdown"]), 0)
        self.assertIn(T.optionTable(), out.getvalue())
        self.assertEqual(T.main(["--check", str(DOCS / "options.md")]), 0)
        stale = self.mktemp()
        text = (DOCS / "options.md").read_text(encoding="utf-8")
        with open(stale, "w", encoding="utf-8") as f:
            f.write(text.replace("| `--cron-period SECONDS` | `60.0` |", "| `--cron-period SECONDS` | `6.0` |"))
        err = io.StringIO()
        with redirect_stderr(err):
            self.assertEqual(T.main(["--check", stale]), 1)
            self.assertEqual(T.main([]), 2)
        self.assertIn("out of date", err.getvalue())
        self.assertEqual(T.main(["--write", stale]), 0)
        with open(stale, encoding="utf-8") as f:
            self.assertEqual(f.read(), text)


class CommandOptionsTests(SynchronousTestCase):
    """
    The C{txgetty} command's options that mirror a twistd option come from
    the same row (L{txgetty.tools.options.addArgument}).
    """

    def test_codec(self) -> None:
        """
        C{txgetty send} and C{txgetty bench} take C{--codec} with the row's
        default and help.
        """
        from txgetty.tools.cli import buildParser

        _, subs = buildParser()
        row = T.option("codec")
        for name in ("send", "bench"):
            [action] = [a for a in subs[name]._actions if "--codec" in a.option_strings]
            self.assertEqual(action.default, row.optionDefault, name)
            self.assertIn(row.help, action.help or "", name)

    def test_numberArgument(self) -> None:
        """
        A number row added to an argparse parser refuses a bad value saying
        what it takes, and reads a good one.
        """
        import argparse

        parser = argparse.ArgumentParser()
        T.addArgument(parser, T.option("cron-period"))
        self.assertEqual(parser.parse_args(["--cron-period", "2"]).cron_period, 2.0)
        self.assertEqual(parser.parse_args([]).cron_period, 60.0)
        err = io.StringIO()
        with redirect_stderr(err), self.assertRaises(SystemExit):
            parser.parse_args(["--cron-period", "abc"])
        self.assertIn("takes a number of seconds, more than 0; got 'abc'", err.getvalue())
