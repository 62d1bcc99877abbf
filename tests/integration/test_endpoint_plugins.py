"""
The C{txgetty-tls:} endpoint plugin with real sockets: plain Twisted code
serving TLS through it, its Twisted-style options, and its cheap import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
import os
import shutil
import sys
import tempfile

from twisted.internet import reactor
from twisted.internet.endpoints import (
    HostnameEndpoint,
    SSL4ServerEndpoint,
    connectProtocol,
    serverFromString,
    wrapClientTLS,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS, trustRootFromCertificates
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from txgetty.errors import ConfigError
from txgetty.transports.endpoints import serverEndpoint

from ..support.certs import testCertificates


#: The longest one wait may take, in seconds.
WAIT = 15.0

#: RFC 7919's ffdhe2048 group (public, well-known Diffie-Hellman parameters).
FFDHE2048 = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


class Echo(Protocol):
    """
    A plain Twisted echo protocol.
    """

    def dataReceived(self, data: bytes) -> None:
        """
        @param data: sent back.
        """
        assert self.transport is not None
        self.transport.write(data)


class OneReply(Protocol):
    """
    Sends a greeting and fires with what comes back.
    """

    def __init__(self, greeting: bytes) -> None:
        """
        @param greeting: what to send once connected.
        """
        from twisted.internet.defer import Deferred

        self.greeting = greeting
        self.received = b""
        self.done: Deferred = Deferred()
        self.lost: Deferred = Deferred()

    def connectionMade(self) -> None:
        """
        Send the greeting.
        """
        assert self.transport is not None
        self.transport.write(self.greeting)

    def dataReceived(self, data: bytes) -> None:
        """
        @param data: collected until the whole greeting is back.
        """
        self.received += data
        if len(self.received) >= len(self.greeting) and not self.done.called:
            self.done.callback(self.received)
            assert self.transport is not None
            self.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        """
        @param reason: why; fails the wait if nothing came back.
        """
        self.lost.callback(None)
        if not self.done.called:
            self.done.errback(reason)


def plainTwistedImports() -> str:
    """
    @return: a script that imports the plugin module as a plugin scan does
        and prints which of txgetty and the global reactor it loaded.
    """
    return (
        "import sys\n"
        "from twisted.plugins import txgetty_endpoints\n"
        "print('txgetty' in sys.modules, 'twisted.internet.reactor' in sys.modules)\n"
    )


async def exchange(port: int, clientCertificate: Any = None) -> bytes:
    """
    @param port: a TLS echo server's port.
    @param clientCertificate: a client certificate to present, if any.
    @return: the echo of a greeting, over a verified TLS connection.
    """
    certs = testCertificates()
    trust = trustRootFromCertificates([Certificate.loadPEM(Path(certs.caCert).read_bytes())])
    creator = optionsForClientTLS("localhost", trustRoot=trust, clientCertificate=clientCertificate)
    endpoint = wrapClientTLS(creator, HostnameEndpoint(reactor, "127.0.0.1", port))
    protocol = OneReply(b"hello over TLS")
    await connectProtocol(endpoint, protocol)
    try:
        return await protocol.done.addTimeout(WAIT, reactor)
    finally:
        await protocol.lost.addTimeout(WAIT, reactor)


class CheapImportTests(TestCase):
    """
    A plugin scan imports every plugin module: ours must not pull in txgetty
    or install the global reactor.
    """

    async def test_importIsCheap(self) -> None:
        """
        Importing C{twisted.plugins.txgetty_endpoints} in a fresh process
        loads neither txgetty nor C{twisted.internet.reactor}.
        """
        with tempfile.TemporaryDirectory() as empty:
            out, err, code = await getProcessOutputAndValue(
                sys.executable, ["-c", plainTwistedImports()], env=dict(os.environ), path=empty, reactor=reactor
            )
        self.assertEqual((out.decode().split(), code), (["False", "False"], 0), err.decode())


class PlainTwistedTLSTests(TestCase):
    """
    C{serverFromString(reactor, "txgetty-tls:...")} from code that knows
    nothing of txgetty: it listens, and a Twisted TLS client that verifies
    the certificate talks to a plain Twisted protocol through it.
    """

    timeout = 60

    async def listen(self, description: str) -> int:
        """
        @param description: a server endpoint string.
        @return: the port an echo server listens on (stopped at the end).
        """
        port = await serverFromString(reactor, description).listen(Factory.forProtocol(Echo))
        self.addCleanup(port.stopListening)
        return port.getHost().port

    async def test_listen(self) -> None:
        """
        C{txgetty-tls:0:interface=127.0.0.1:key=K:cert=C} serves TLS with
        the certificate given.
        """
        certs = testCertificates()
        port = await self.listen(f"txgetty-tls:0:interface=127.0.0.1:key={certs.serverKey}:cert={certs.serverCert}")
        self.assertEqual(await exchange(port), b"hello over TLS")

    async def test_twistedNames(self) -> None:
        """
        Twisted's C{ssl:} option names work too: C{privateKey},
        C{certKey}, C{extraCertChain}.
        """
        certs = testCertificates()
        port = await self.listen(
            f"txgetty-tls:0:interface=127.0.0.1:privateKey={certs.serverKey}:certKey={certs.serverCert}"
            f":extraCertChain={certs.caCert}"
        )
        self.assertEqual(await exchange(port), b"hello over TLS")

    async def test_clientCA(self) -> None:
        """
        With C{clientCA=}, a client with a certificate from that CA gets
        through and one without a certificate does not.
        """
        from twisted.internet.ssl import PrivateCertificate

        certs = testCertificates()
        port = await self.listen(
            f"txgetty-tls:0:interface=127.0.0.1:key={certs.serverKey}:cert={certs.serverCert}:clientCA={certs.caCert}"
        )
        client = PrivateCertificate.loadPEM(Path(certs.clientCert).read_bytes() + Path(certs.clientKey).read_bytes())
        self.assertEqual(await exchange(port, client), b"hello over TLS")
        with self.assertRaises(Exception):
            await exchange(port)


class SSLOptionsTests(TestCase):
    """
    Where txgetty takes the C{ssl:} prefix over (C{--listen},
    L{txgetty.Server}), every option of Twisted's C{ssl:} server endpoint is
    accepted and means what it means in Twisted.
    """

    timeout = 60

    def dhFile(self) -> str:
        """
        @return: a PEM file of Diffie-Hellman parameters.
        """
        fd, path = tempfile.mkstemp(suffix=".pem")
        os.write(fd, FFDHE2048)
        os.close(fd)
        self.addCleanup(os.remove, path)
        return path

    def both(self, description: str) -> tuple[Any, Any]:
        """
        @param description: an C{ssl:} description.
        @return: Twisted's endpoint and txgetty's for it.
        """
        return serverFromString(MemoryReactorClock(), description), serverEndpoint(MemoryReactorClock(), description)

    def assertSame(self, description: str) -> Any:
        """
        Twisted's endpoint and txgetty's for one description listen alike:
        port, interface, backlog, certificate, key, chain, method and DH
        parameters.

        @param description: an C{ssl:} description.
        @return: txgetty's endpoint.
        """
        twisted, ours = self.both(description)
        self.assertIsInstance(ours, SSL4ServerEndpoint)
        for name in ("_port", "_interface", "_backlog"):
            self.assertEqual(getattr(ours, name), getattr(twisted, name), name)
        a, b = twisted._sslContextFactory, ours._sslContextFactory
        self.assertEqual(Certificate(b.certificate), Certificate(a.certificate))
        self.assertEqual(b.privateKey.to_cryptography_key().private_numbers(),
                         a.privateKey.to_cryptography_key().private_numbers())
        self.assertEqual([Certificate(c) for c in b.extraCertChain or []],
                         [Certificate(c) for c in a.extraCertChain or []])
        self.assertEqual(b.method, a.method)
        self.assertEqual(getattr(b.dhParameters, "_dhFile", None), getattr(a.dhParameters, "_dhFile", None))
        b.getContext()
        return ours

    def test_everyOption(self) -> None:
        """
        C{privateKey}, C{certKey}, C{extraCertChain}, C{sslmethod},
        C{dhParameters}, C{interface} and C{backlog} together.
        """
        certs = testCertificates()
        self.assertSame(
            f"ssl:0:privateKey={certs.serverKey}:certKey={certs.serverCert}:extraCertChain={certs.caCert}"
            f":sslmethod=TLS_METHOD:dhParameters={self.dhFile()}:interface=127.0.0.1:backlog=7"
        )

    def test_keyFileHoldsCertificate(self) -> None:
        """
        As in Twisted, without C{certKey} the C{privateKey} file holds the
        certificate too.
        """
        certs = testCertificates()
        fd, combined = tempfile.mkstemp(suffix=".pem")
        os.write(fd, Path(certs.serverCert).read_bytes() + Path(certs.serverKey).read_bytes())
        os.close(fd)
        self.addCleanup(os.remove, combined)
        self.assertSame(f"ssl:0:privateKey={combined}")

    def test_serverPemDefault(self) -> None:
        """
        As in Twisted, without C{privateKey} the key and certificate are in
        C{server.pem} of the current directory.
        """
        certs = testCertificates()
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        Path(directory, "server.pem").write_bytes(
            Path(certs.serverCert).read_bytes() + Path(certs.serverKey).read_bytes()
        )
        cwd = os.getcwd()
        os.chdir(directory)
        self.addCleanup(os.chdir, cwd)
        self.assertSame("ssl:0:interface=127.0.0.1")

    def test_badOptionValues(self) -> None:
        """
        A method OpenSSL does not have, or a DH file that does not exist,
        is a L{ConfigError} naming it (Twisted refuses them too).
        """
        certs = testCertificates()
        base = f"ssl:0:privateKey={certs.serverKey}:certKey={certs.serverCert}"
        for option, needle in (("sslmethod=TLSv9_METHOD", "unknown sslmethod 'TLSv9_METHOD'"),
                               ("dhParameters=/nonexistent/dh.pem", "cannot read the dhParameters file")):
            with self.assertRaises(Exception):  # Twisted: when parsing, or when making the context
                serverFromString(MemoryReactorClock(), f"{base}:{option}")._sslContextFactory.getContext()
            with self.assertRaises(ConfigError) as ctx:
                serverEndpoint(MemoryReactorClock(), f"{base}:{option}")
            self.assertIn(needle, str(ctx.exception))

    def test_caCertsDir(self) -> None:
        """
        C{caCertsDir} is an option of Twisted's C{ssl:} client, which its
        server refuses; txgetty refuses it too and points at C{clientCA}.
        """
        certs = testCertificates()
        description = f"ssl:0:privateKey={certs.serverKey}:certKey={certs.serverCert}:caCertsDir=/etc/ssl/certs"
        with self.assertRaises(TypeError):
            serverFromString(MemoryReactorClock(), description)
        with self.assertRaises(ConfigError) as ctx:
            serverEndpoint(MemoryReactorClock(), description)
        self.assertIn("clientCA=FILE", str(ctx.exception))

    async def test_serves(self) -> None:
        """
        An C{ssl:} listener with Twisted's options serves a verifying
        client (through txgetty's listener parsing).
        """
        certs = testCertificates()
        endpoint = serverEndpoint(
            reactor, f"ssl:0:interface=127.0.0.1:privateKey={certs.serverKey}:certKey={certs.serverCert}"
                     f":sslmethod=TLS_METHOD:dhParameters={self.dhFile()}"
        )
        port = await endpoint.listen(Factory.forProtocol(Echo))
        self.addCleanup(port.stopListening)
        reply = await exchange(port.getHost().port)
        self.assertEqual(reply, b"hello over TLS")
