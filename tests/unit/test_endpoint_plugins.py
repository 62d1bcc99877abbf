"""
txgetty in the Twisted ecosystem: its C{txgetty-tls:} endpoint-string plugin
used from plain Twisted code, Twisted's own C{ssl:} and C{tls:} options where
txgetty's listeners take those prefixes, and why C{udp:} and C{ws://} are not
plugins (docs/transports.md, "Endpoint strings in plain Twisted code").

The TLS tests listen on 127.0.0.1 port 0 with the certificates of
L{tests.certs}, and a Twisted TLS client checks the server certificate.
"""

from __future__ import annotations

from pathlib import Path
import os
import re
import shutil
import tempfile

from twisted.internet.endpoints import SSL4ServerEndpoint, _parse, serverFromString
from twisted.internet.interfaces import IStreamServerEndpointStringParser
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty.errors import ConfigError
from txgetty.transports.endpoints import serverEndpoint

from ..support.certs import testCertificates
from ..support.examples import ROOT


class PluginTests(SynchronousTestCase):
    """
    The plugin is found by Twisted's scan, provides the interface and is
    cheap to import.
    """

    def test_found(self) -> None:
        """
        Twisted's scan finds one C{txgetty-tls} parser, which provides
        L{IStreamServerEndpointStringParser}; C{tls}, C{ssl}, C{udp} and
        C{ws} are not registered by txgetty.
        """
        parsers = list(getPlugins(IStreamServerEndpointStringParser))
        ours = [p for p in parsers if type(p).__module__ == "twisted.plugins.txgetty_endpoints"]
        self.assertEqual([p.prefix for p in ours], ["txgetty-tls"])
        verifyObject(IStreamServerEndpointStringParser, ours[0])
        self.assertEqual([p for p in parsers if p.prefix == "txgetty-tls"], ours)

    def test_twistedTLSUntouched(self) -> None:
        """
        Twisted's own C{tls:PATH} (a directory of PEM files) is still
        Twisted's, from serverFromString and from txgetty's listeners.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        certs = testCertificates()
        with open(os.path.join(directory, "localhost.pem"), "wb") as f:
            f.write(Path(certs.serverKey).read_bytes() + Path(certs.serverCert).read_bytes())
        description = f"tls:{directory}:port=0:interface=127.0.0.1"
        twisted = serverFromString(MemoryReactorClock(), description)
        ours = serverEndpoint(MemoryReactorClock(), description)
        self.assertEqual(type(ours), type(twisted))
        self.assertNotIsInstance(ours, SSL4ServerEndpoint)

    def test_errors(self) -> None:
        """
        A wrong C{txgetty-tls:} description is a L{ValueError} (a
        L{ConfigError}) that says what to change.
        """
        certs = testCertificates()
        for description, needle in (
            ("txgetty-tls:0", "needs a private key and a certificate"),
            (f"txgetty-tls:0:key={certs.serverKey}:cert={certs.serverCert}:bogus=1", "unknown option 'bogus'"),
            (f"txgetty-tls:x:key={certs.serverKey}:cert={certs.serverCert}", "must be a number 0-65535"),
            ("txgetty-tls:0:key=/nonexistent.key:cert=/nonexistent.crt", "cannot read"),
        ):
            with self.assertRaises(ConfigError) as ctx:
                serverFromString(MemoryReactorClock(), description)
            self.assertIsInstance(ctx.exception, ValueError)
            self.assertIn(needle, str(ctx.exception))


class DocTests(SynchronousTestCase):
    """
    docs/transports.md's example string works as written, with real files.
    """

    def test_example(self) -> None:
        """
        The page's C{txgetty-tls:} string, its port made 0 and its files the
        test certificates, makes a TLS endpoint on 127.0.0.1.
        """
        text = (ROOT / "docs" / "transports.md").read_text(encoding="utf-8")
        [description] = re.findall(r'serverFromString\(reactor, "(txgetty-tls:[^"]+)"\)', text)
        certs = testCertificates()
        description = (description.replace(":8443:", ":0:").replace("server.key", certs.serverKey)
                       .replace("server.crt", certs.serverCert))
        endpoint = serverFromString(MemoryReactorClock(), description)
        self.assertIsInstance(endpoint, SSL4ServerEndpoint)
        self.assertEqual((endpoint._port, endpoint._interface), (0, "127.0.0.1"))


class NotPluginsTests(SynchronousTestCase):
    """
    The reasons docs/transports.md gives for C{udp:} and C{ws://} not being
    endpoint-string plugins hold.
    """

    def test_udpIsNotAStreamEndpoint(self) -> None:
        """
        Twisted has no C{udp:} server endpoint (UDP is C{listenUDP} with a
        C{DatagramProtocol}), and txgetty registers none.
        """
        with self.assertRaises(ValueError) as ctx:
            serverFromString(MemoryReactorClock(), "udp:0:interface=127.0.0.1")
        self.assertIn("Unknown endpoint type", str(ctx.exception))

    def test_webSocketURLDoesNotSurvive(self) -> None:
        """
        Twisted splits a description at every colon and takes a part with
        C{=} as an option: a C{ws://} URL reaches a plugin as C{//HOST} and
        C{PORT/PATH}, and one with a query whose value holds colons (an
        C{allowedOrigins} URL) as parts out of order, so the URL cannot be
        rebuilt.
        """
        args, kw = _parse("ws://127.0.0.1:8080/echo")
        self.assertEqual((args, kw), (["ws", "//127.0.0.1", "8080/echo"], {}))
        args, kw = _parse("ws://127.0.0.1:8080/chat?static=web&allowedOrigins=http://127.0.0.1:8080")
        self.assertEqual(args, ["ws", "//127.0.0.1", "//127.0.0.1", "8080"])
        self.assertEqual(kw, {"8080/chat?static": "web&allowedOrigins=http"})
