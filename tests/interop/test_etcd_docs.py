"""
Keep C{docs/discovery.md} true: its state tables are the code's transition
tables, the defaults and messages it quotes are the code's, its value
example is what a registration writes, and the API it lists exists.
"""

from __future__ import annotations

from pathlib import Path
import json
import os
import re
import shutil
import sys
import tempfile

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty.discovery import (
    EtcdClient,
    IEtcdClient,
    ServerEntry,
    etcd as E,
    parseEtcdURL,
    registration as R,
    watcher as W,
)
from txgetty.discovery.errors import EtcdUnavailableError
from txgetty.errors import ConfigError

from ..support.etcd import sharedEtcd, uniquePrefix
from ..support.examples import ROOT


DOC = ROOT / "docs" / "discovery.md"


def docText() -> str:
    """
    @return: the page.
    """
    return DOC.read_text(encoding="utf-8")


def stateTable(intro: str) -> set[tuple[str, str, str]]:
    """
    @param intro: the sentence that introduces the table.
    @return: its C{(state, event, next state)} rows, one per source state.
    """
    text = docText()
    rows = text[text.index(intro):].split("\n\n", 2)[1].splitlines()[2:]
    out = set()
    for row in rows:
        states, event, following = (cell.strip() for cell in row.strip("|").split("|")[:3])
        for state in states.split(","):
            out.add((state.strip(), event, following))
    return out


class StateTableTests(SynchronousTestCase):
    """
    The documented tables are the ones the code applies.
    """

    def test_registration(self) -> None:
        """
        Every row of the registration table is a transition of
        L{R.TRANSITIONS} and every transition is a row.
        """
        code = {(s.name, e, n.name) for (s, e), (n, _) in R.TRANSITIONS.items()}
        self.assertEqual(stateTable("A registration moves through"), code)

    def test_watcher(self) -> None:
        """
        The same for the watcher and L{W.TRANSITIONS}.
        """
        code = {(s.name, e, n.name) for (s, e), (n, _) in W.TRANSITIONS.items()}
        self.assertEqual(stateTable("A watcher moves through"), code)


class QuotedTests(SynchronousTestCase):
    """
    Defaults, messages and examples quoted by the page.
    """

    def test_defaults(self) -> None:
        """
        The defaults the page states are the code's.
        """
        text = docText()
        self.assertEqual((E.DEFAULT_ETCD_PORT, E.DEFAULT_PREFIX), (2379, "/txgetty"))
        self.assertIn("| `PORT` | `2379` |", text)
        self.assertIn("| `PREFIX` | `/txgetty` |", text)
        self.assertEqual(R.DEFAULT_TTL, 10)
        self.assertIn("(default **10**)", text)
        self.assertEqual(R.MIN_TTL, 2)
        self.assertIn("refuses a `ttl` below 2", text)
        self.assertEqual(R.DEFAULT_STOP_TIMEOUT, 3.0)
        self.assertIn("`stopTimeout` (3 s)", text)
        self.assertEqual(W.DEFAULT_PROBE_INTERVAL, 5.0)
        self.assertIn("`probeInterval` (5 s)", text)
        self.assertEqual(E.DEFAULT_TIMEOUT, 5.0)
        self.assertIn("(request timeout, 5 s)", text)
        retry = R.DEFAULT_RETRY
        self.assertEqual((retry.initialDelay, retry.factor, retry.maxDelay, retry.jitter), (0.5, 2.0, 5.0, 0.1))
        self.assertIn("(0.5 s doubling up to 5 s, 10 % jitter)", text)

    def test_urlMessage(self) -> None:
        """
        The bad-URL message the page quotes is the one raised.
        """
        error = self.assertRaises(ConfigError, parseEtcdURL, "etcd://h:99999")
        self.assertIn(" ".join(str(error).split()), " ".join(docText().split()))
        self.assertEqual(parseEtcdURL("etcd://127.0.0.1:2379"), ("http://127.0.0.1:2379", "/txgetty"))

    def test_unavailableMessage(self) -> None:
        """
        The unavailable message the page quotes is the one raised.
        """
        error = EtcdUnavailableError("http://HOST:PORT", "/v3/kv/put", "connection refused")
        self.assertIn(f"Message: `{error}`", docText())

    def test_valueExample(self) -> None:
        """
        The value example reads as a L{ServerEntry} and is written back
        byte for byte (fields in that order).
        """
        example = re.search(r"```json\n(.*?)\n```", docText(), re.S).group(1)
        entry = ServerEntry.fromJSON(example.encode())
        self.assertEqual(entry, ServerEntry("10.0.0.5:8091", 1, {"zone": "eu-1"}, 1767225600))
        self.assertEqual(entry.toJSON(), json.dumps(json.loads(example), separators=(",", ":")).encode())

    def test_clientMethods(self) -> None:
        """
        Every method in the page's client table exists on L{EtcdClient};
        every L{IEtcdClient} method is in the table.
        """
        text = docText()
        table = text[text.index("| method | fires with |"):].split("\n\n", 1)[0]
        names = set(re.findall(r"^\| `(\w+)\(", table, re.M))
        for name in names:
            self.assertTrue(callable(getattr(EtcdClient, name, None)), name)
        self.assertLessEqual({n for n in IEtcdClient.names() if callable(getattr(EtcdClient, n, None))}, names)


class DemoTests(TestCase):
    """
    The page's example runs as the page says, against a real etcd.
    """

    timeout = 60

    async def test_demo(self) -> None:
        """
        C{discovery_demo.py}, run with a registry URL, prints the join and
        then the leave of C{127.0.0.1:8091}, and exits 0.
        """
        etcd = await sharedEtcd()
        code = re.search(r"```python\n# file: discovery_demo.py\n(.*?)^```", docText(), re.S | re.M).group(1)
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "discovery_demo.py")
        Path(path).write_text(code, encoding="utf-8")
        url = etcd.registryURL + uniquePrefix(self)
        d = getProcessOutputAndValue(sys.executable, [path, url], env=dict(os.environ), reactor=reactor)
        out, err, status = await d.addTimeout(30, reactor)
        self.assertEqual((status, err.decode()), (0, ""))
        self.assertEqual(out.decode().splitlines(), [
            "added ['127.0.0.1:8091'] removed []",
            "added [] removed ['127.0.0.1:8091']",
        ])
