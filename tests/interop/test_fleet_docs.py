"""
docs/fleet.md ("Running a fleet"), tested from the page's words: every
C{twistd -n txgetty} command on it (the systemd unit's C{ExecStart}
included) is accepted, the one it says is refused is refused with the line
it quotes, the key layout and value are those written, the defaults are
those stated, the client example runs against a real etcd, and the quoted
C{txgetty call} errors are those printed.  The behaviours of "What happens
when" are tested in tests/integration/test_rpc_registry.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty.discovery import ServerEntry, parseEtcdURL, serverKey
from txgetty.discovery.announce import ServerAnnouncement
from txgetty.rpc import RpcServer
from txgetty.tools.tap import Options

from ..support.docs import DOCS, docFiles, writeFiles
from ..support.etcd import sharedEtcd, uniquePrefix
from ..support.processes import runTxgetty

PAGE = (DOCS / "fleet.md").read_text(encoding="utf-8")

CALC = "class Calc:\n    def add(self, a, b):\n        return a + b\n"


class Calc:
    """
    The page's C{calc:Calc}.
    """

    def add(self, a: int, b: int) -> int:
        return a + b


def twistdCommands() -> list[list[str]]:
    """
    @return: the arguments after C{txgetty} of each C{twistd -n ...
        txgetty} command on the page (shell blocks and C{ExecStart=}).
    """
    lines = re.findall(r"^(?:ExecStart=)?(?:/\S*/)?twistd -n .*$", PAGE, re.M)
    commands = []
    for line in lines:
        words = shlex.split(line.removeprefix("ExecStart="))
        commands.append(words[words.index("txgetty") + 1:])
    return commands


class CommandTests(SynchronousTestCase):
    """
    The page's commands, as C{twistd -n txgetty} parses them.
    """

    def setUp(self) -> None:
        directory = tempfile.mkdtemp()
        Path(directory, "calc.py").write_text(CALC, encoding="utf-8")
        sys.path.insert(0, directory)
        self.addCleanup(sys.path.remove, directory)
        self.addCleanup(sys.modules.pop, "calc", None)

    def parse(self, args: list[str]) -> Options:
        options = Options()
        options.parseOptions(args)
        return options

    def test_commands(self) -> None:
        """
        Every command is accepted, except the one the page says is refused,
        which is refused with the quoted line.
        """
        commands = twistdCommands()
        self.assertEqual(len(commands), 3)
        for command in commands:
            options = self.parse(command)
            self.assertEqual(options["registry"], "etcd://10.0.0.1:2379/prod")
        [advertised] = [c for c in commands if "--registry-advertise" in c]
        self.assertIn("tcp:8091", advertised)
        i = advertised.index("--registry-advertise")
        quoted = re.search(r"^(--registry: the RPC listener .*)$", PAGE, re.M).group(1)
        error = self.assertRaises(UsageError, self.parse, advertised[:i] + advertised[i + 2:])
        self.assertEqual(str(error), quoted)

    def test_tlsRefused(self) -> None:
        """
        "a TLS RPC listener ... cannot be registered, and --registry with one
        stops twistd at once with" the quoted line.
        """
        from ..support.certs import testCertificates

        pki = testCertificates()
        quoted = re.search(r"^(--registry: the RPC listener tls:8091 is TLS.*)$", PAGE, re.M).group(1)
        args = ["--rpc-listen", "tls:8091", "--tls-key", pki.serverKey, "--tls-cert", pki.serverCert,
                "--registry", "etcd://10.0.0.1:2379/prod"]
        error = self.assertRaises(UsageError, self.parse, args)
        self.assertEqual(str(error), quoted)

    def test_defaults(self) -> None:
        """
        Default port 2379, prefix /txgetty, TTL 10 s (at least 2).
        """
        self.assertIn("default port 2379, default prefix `/txgetty`", PAGE)
        self.assertEqual(parseEtcdURL("etcd://h"), ("http://h:2379", "/txgetty"))
        self.assertIn("(default **10**, at least 2)", PAGE)
        self.assertEqual(Options()["registry-ttl"], 10)
        self.assertRaises(UsageError, Options().parseOptions, ["--registry-ttl", "1"])

    def test_layout(self) -> None:
        """
        The key example is the key of Echo at 10.0.0.5:8091; the value
        example has exactly the fields a server writes.
        """
        self.assertIn("PREFIX/services/<Service>/<host:port>", PAGE)
        self.assertIn(f"`{serverKey('/txgetty', 'Echo', '10.0.0.5:8091')}`", PAGE)
        example = json.loads(re.search(r"```json\n(.*?)\n```", PAGE, re.S).group(1))
        written = json.loads(ServerEntry("10.0.0.5:8091", 1, {}, 1767225600).toJSON())
        self.assertEqual(example, written)


class EtcdTests(TestCase):
    """
    The page's client example and quoted errors, against a real etcd.
    """

    timeout = 90

    async def setUp(self) -> None:  # type: ignore[override]
        self.etcd = await sharedEtcd()
        self.prefix = uniquePrefix(self)
        self.url = self.etcd.registryURL + self.prefix

    async def calcServer(self) -> None:
        """
        A Calc server registered under the test's prefix.
        """
        server = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor)
        server.register(Calc())
        announcement = ServerAnnouncement.fromURL(self.url, server.whenListening, lambda: ["Calc"], reactor=reactor)
        server.startService()
        announcement.startService()
        self.addCleanup(server.stopService)
        self.addCleanup(announcement.stopService)
        await announcement.whenRegistered()

    async def test_clientExample(self) -> None:
        """
        fleet_client.py, pointed at the test's registry, prints 3.
        """
        await self.calcServer()
        code = docFiles("fleet.md")["fleet_client.py"]
        changed = code.replace('"etcd://127.0.0.1:2379/prod"', json.dumps(self.url))
        self.assertNotEqual(changed, code)
        directory = writeFiles(Path(tempfile.mkdtemp()), {"fleet_client.py": changed})
        out, err, status = await getProcessOutputAndValue(
            sys.executable, [str(directory / "fleet_client.py")], env=dict(os.environ), reactor=reactor)
        self.assertEqual((out.decode().strip(), status), ("3", 0), err.decode())

    async def test_callCommand(self) -> None:
        """
        C{txgetty call etcd://.../PREFIX Calc.add 1 2} prints 3.
        """
        await self.calcServer()
        out, err, code = await runTxgetty("call", self.url, "Calc.add", "1", "2")
        self.assertEqual((out, code), ("3\n", 0), err)
        self.assertIn("txgetty call etcd://127.0.0.1:2379/prod Calc.add 1 2", PAGE)

    async def test_quotedErrors(self) -> None:
        """
        The two quoted lines are what C{txgetty call} prints (for the page's
        addresses), with exit status 1.
        """
        quoted = re.findall(r"\(`(txgetty call: [^`]*)`\)", PAGE)
        self.assertEqual(len(quoted), 2)
        out, err, code = await runTxgetty("call", "etcd://127.0.0.1:1/prod", "Calc.add", "1", "2")
        self.assertEqual((code, err.strip().replace("127.0.0.1:1", "127.0.0.1:2379")), (1, quoted[0]))
        out, err, code = await runTxgetty("call", self.url, "Calc.add", "1", "2")
        expected = quoted[1].replace("127.0.0.1:2379", f"127.0.0.1:{self.etcd.clientPort}").replace(
            "/prod", self.prefix)
        self.assertEqual((code, err.strip()), (1, expected))
