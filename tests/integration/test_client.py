"""
Integration tests for L{txgetty.client.Client} against a real
L{txgetty.server.Server} on 127.0.0.1 port 0 and UNIX sockets: reconnect,
backoff, pool size, CPU while the server is down, TLS, choice, stopping.

Every wait is bounded (L{WAIT <tests.support.net.WAIT>} seconds); the only
real-time waits (L{realWait <tests.support.transports.realWait>}, short)
observe that nothing happens.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Callable
import os
import resource

from twisted.internet import reactor
from twisted.internet.error import ConnectionDone
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from txgetty.client import Client, slot as _slot
from txgetty.client.reconnect import ReconnectPolicy
from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.errors import ConnectGaveUpError, ConnectTimeoutError, SessionRefusedError, TLSHandshakeError
from txgetty.server import Server
from txgetty.session import Session
from txgetty.transports.tls import TLSClientSettings, TLSServerSettings

from ..support.certs import testCertificates
from ..support.net import EchoRecorder, bounded
from ..support.transports import FAST, ONCE, realWait


#: A policy whose delays double: 0.05, 0.1, 0.2, 0.4, 0.8 s ...
SLOW_GROWTH = ReconnectPolicy(initialDelay=0.05, factor=2, maxDelay=2.0, jitter=0.1)
#: A TCP listener on loopback, any free port.
LOCAL = "tcp:0:interface=127.0.0.1"


class ServerFixture:
    """
    A txgetty L{Server} on one endpoint whose sessions share one listener.

    @ivar listener: the listener of every session (echoes by default); it
        also records an C{"accept"} event for every accepted connection.
    @ivar server: the server.
    @ivar acceptTimes: the reactor time of every accepted connection.
    @ivar maxSessions: the most sessions the server held at once.
    """

    def __init__(
        self,
        testCase: TestCase,
        endpoint: str = LOCAL,
        *,
        listener: EchoRecorder | None = None,
        onNew: Callable[[Session], Any] | None = None,
        **serverArgs: Any,
    ) -> None:
        """
        @param testCase: the test, for clean-up.
        @param endpoint: the endpoint description.
        @param listener: the listener; an echoing L{EchoRecorder} if C{None}.
        @param onNew: run last in the new-session callback.
        @param serverArgs: more L{Server} arguments (C{tls} ...).
        """
        self.testCase = testCase
        self.listener = listener or EchoRecorder()
        self.onNew = onNew
        self.acceptTimes: list[float] = []
        self.maxSessions = 0
        self.server = Server([endpoint], self._newSession, reactor=reactor, **serverArgs)

    def _newSession(self, session: Session) -> Any:
        """
        @param session: a new server session.
        @return: what C{onNew} returns.
        """
        self.acceptTimes.append(reactor.seconds())
        self.listener.events.append(("accept", session))
        self.maxSessions = max(self.maxSessions, len(self.server.sessions()))
        session.codec = HelloCodec()
        session.listener = self.listener
        return self.onNew(session) if self.onNew is not None else None

    async def start(self) -> Any:
        """
        Start listening; the test stops the server at its end.

        @return: the bound address.
        """
        self.server.startService()
        self.testCase.addCleanup(self.stop)
        addresses = await bounded(self.server.whenListening(), "the server to listen")
        return addresses[0]

    def stop(self) -> Any:
        """
        @return: a L{Deferred} firing once the server stopped, or C{None} if
            it does not run.
        """
        if self.server.running:
            return bounded(self.server.stopService(), "the server to stop")
        return None


def startClient(
    testCase: TestCase,
    address: str,
    *,
    connections: int = 1,
    listener: EchoRecorder | None = None,
    reconnect: ReconnectPolicy = FAST,
    onNew: Callable[[Session], Any] | None = None,
    **clientArgs: Any,
) -> tuple[Client, EchoRecorder]:
    """
    Start a client whose sessions share one listener; the test stops it.

    @param testCase: the test, for clean-up.
    @param address: where to connect.
    @param connections: the pool size.
    @param listener: the listener; a non-echoing L{EchoRecorder} if C{None}.
    @param reconnect: the reconnect policy.
    @param onNew: run last in the new-session callback; its result is the
        callback's.
    @param clientArgs: more L{Client} arguments.
    @return: the running client and its listener.
    """
    recorder = listener or EchoRecorder(echo=False)

    def newSession(session: Session) -> Any:
        session.codec = HelloCodec()
        session.listener = recorder
        return onNew(session) if onNew is not None else None

    client = Client(
        address, newSession, connections=connections, reactor=reactor, reconnect=reconnect, **clientArgs
    )
    client.startService()
    testCase.addCleanup(lambda: bounded(client.stopService(), "the client to stop"))
    return client, recorder


async def checkEchoes(testCase: TestCase, client: Client, listener: EchoRecorder, tag: bytes) -> None:
    """
    Send one packet on every open session and check each comes back on the
    session that sent it.

    @param testCase: the test.
    @param client: the client.
    @param listener: the client's listener.
    @param tag: makes this round's packets unique.
    """
    sessions = client.sessions()
    testCase.assertTrue(sessions, "no open session to check")
    before = len(listener.messages)
    sent = {}
    for i, session in enumerate(sessions):
        payload = tag + b"-%d" % i
        sent[payload] = session
        session.writePkg(payload)
    await listener.whenCount("message", before + len(sessions))
    got = {e[2]: e[1] for e in listener.events if e[0] == "message"}
    for payload, session in sent.items():
        testCase.assertIs(got.get(payload), session, f"echo of {payload!r}")


def cpuSeconds() -> float:
    """@return: user + system CPU seconds used by this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RefusingListener(EchoRecorder):
    """A server listener whose C{onOpen} refuses every session."""

    def onOpen(self, session: Any) -> Any:
        """
        @param session: the session, refused.
        @raise SessionRefusedError: always.
        """
        raise SessionRefusedError("this server refuses every session")


class ReconnectTests(TestCase):
    """The pool re-dials lost sessions against a real server."""

    timeout = 30

    async def test_serverRestart(self) -> None:
        """
        When the server stops, every client session closes cleanly (onClose,
        no onError); once a new server listens on the same port, all N
        sessions come back and echo again.
        """
        first = ServerFixture(self)
        port = (await first.start()).port
        client, listener = startClient(self, f"tcp:127.0.0.1:{port}", connections=4)
        await bounded(client.whenAllConnected(), "4 sessions")
        await checkEchoes(self, client, listener, b"before")
        await first.stop()
        await listener.whenCount("close", 4)
        self.assertEqual(client.sessions(), [])
        self.assertEqual(listener.errors, [])
        second = ServerFixture(self, f"tcp:{port}:interface=127.0.0.1")
        await second.start()
        sessions = await bounded(client.whenAllConnected(), "4 sessions after the restart")
        self.assertEqual(len(sessions), 4)
        await checkEchoes(self, client, listener, b"after")
        self.assertEqual((client.opened, client.lost), (8, 4))

    async def test_reset(self) -> None:
        """
        When the server aborts every connection (a reset), each client
        session sees onError then onClose, and the pool dials new sessions
        that work.
        """
        server = ServerFixture(self)
        port = (await server.start()).port
        client, listener = startClient(self, f"tcp:127.0.0.1:{port}", connections=3)
        old = await bounded(client.whenAllConnected(), "3 sessions")
        await server.listener.whenCount("open", 3)
        for session in server.server.sessions():
            session.transport.abortConnection()
        await listener.whenCount("close", 3)
        for session in old:
            self.assertEqual(listener.eventsOf(session), ["open", "error", "close"])
            self.assertIsNone(session.closeReason.check(ConnectionDone))
        new = await bounded(client.whenAllConnected(), "3 new sessions")
        self.assertFalse(set(new) & set(old))
        await checkEchoes(self, client, listener, b"again")

    async def checkBackoff(self, server: ServerFixture, client: Client) -> None:
        """
        Check that a client whose every session is refused re-dials with
        growing delays (L{SLOW_GROWTH}), never in a hot loop: the 5th
        connection comes no sooner than 0.05 + 0.1 + 0.2 + 0.4 s (less
        jitter) after the 1st, the gaps grow, nothing comes in the next
        0.3 s, and the slot counts its consecutive failures.

        @param server: the server, which accepts and records the times.
        @param client: the client, already started.
        """
        await server.listener.whenCount("accept", 5)
        times = server.acceptTimes
        self.assertEqual(len(times), 5)
        self.assertGreaterEqual(times[4] - times[0], 0.75 * 0.9)
        gaps = [b - a for a, b in pairwise(times)]
        for shorter, longer in pairwise(gaps):
            self.assertGreater(longer, shorter * 1.3, f"gaps do not grow: {gaps}")
        await realWait(0.3)
        self.assertEqual(server.server.accepted, 5)
        self.assertGreaterEqual(client._slots[0].failures, 4)

    async def test_refusedInOnOpenBacksOff(self) -> None:
        """
        A server whose onOpen refuses every session is re-dialled with
        growing delays, never in a hot loop.
        """
        server = ServerFixture(self, listener=RefusingListener())
        port = (await server.start()).port
        client, _ = startClient(self, f"tcp:127.0.0.1:{port}", reconnect=SLOW_GROWTH)
        await self.checkBackoff(server, client)
        self.assertEqual(server.server.opened, 0)

    async def test_clientRefusesBacksOff(self) -> None:
        """
        A client new-session callback that refuses every session (returns
        C{False}) does not re-dial in a hot loop either; each refusal is a
        failed attempt in the client's counters.
        """
        server = ServerFixture(self)
        port = (await server.start()).port
        client, listener = startClient(
            self, f"tcp:127.0.0.1:{port}", reconnect=SLOW_GROWTH, onNew=lambda session: False
        )
        await self.checkBackoff(server, client)
        self.assertEqual((client.dials, client.failures, client.opened), (5, 5, 0))
        self.assertEqual(listener.events, [])

    async def test_refusedCountsAsFailure(self) -> None:
        """
        Sessions that the server drops at once (before stableAfter) count in
        the client's C{failures} counter, as its docstring says.
        """
        server = ServerFixture(self, listener=RefusingListener())
        port = (await server.start()).port
        client, listener = startClient(self, f"tcp:127.0.0.1:{port}")
        await server.listener.whenCount("error", 3)
        await listener.whenCount("close", 3)
        self.assertGreaterEqual(client.failures, 2, client.stat())


    async def test_poolSizeThroughRestarts(self) -> None:
        """
        A pool of 16 stays 16 through three server restarts: the server
        never holds more than 16 sessions of it at any accept, and both
        sides are back to exactly 16 after each restart.
        """
        port = 0
        for round in range(4):
            fixture = ServerFixture(self, f"tcp:{port}:interface=127.0.0.1")
            port = (await fixture.start()).port
            if round == 0:
                client, listener = startClient(self, f"tcp:127.0.0.1:{port}", connections=16)
            sessions = await bounded(client.whenAllConnected(), f"16 sessions in round {round}")
            await fixture.listener.whenCount("open", 16)
            counts = (len(sessions), len(client.sessions()), len(fixture.server.sessions()))
            self.assertEqual(counts + (fixture.server.accepted,), (16, 16, 16, 16))
            self.assertLessEqual(fixture.maxSessions, 16)
            await checkEchoes(self, client, listener, b"round%d" % round)
            if round < 3:
                await fixture.stop()
                await listener.whenCount("close", 16 * (round + 1))
                self.assertEqual(client.sessions(), [])
        self.assertEqual(client.opened, 64)

    async def test_noBusyLoopWhileDown(self) -> None:
        """
        While the server is down, a pool of 16 keeps dialling with backoff
        but uses little CPU (under 0.2 s of CPU in 0.5 s).
        """
        server = ServerFixture(self)
        port = (await server.start()).port
        client, listener = startClient(self, f"tcp:127.0.0.1:{port}", connections=16)
        await bounded(client.whenAllConnected(), "16 sessions")
        await server.stop()
        await listener.whenCount("close", 16)
        dials, cpu = client.dials, cpuSeconds()
        await realWait(0.5)
        used = cpuSeconds() - cpu
        self.assertLess(used, 0.2, f"{used:.3f} s of CPU while the server was down")
        self.assertGreater(client.dials, dials, "the client stopped dialling")
        self.assertLessEqual(client.dials - dials, 16 * 8, "too many dials in 0.5 s")


class TLSTests(TestCase):
    """TLS clients verify the server, present certificates, opt out loudly."""

    timeout = 30

    def setUp(self) -> None:
        """Make (or reuse) the test PKI."""
        self.pki = testCertificates()

    async def startTLSServer(self, clientCA: str | None = None) -> ServerFixture:
        """
        @param clientCA: the CA file client certificates must chain to, for
            mutual TLS.
        @return: a running TLS echo server on loopback.
        """
        settings = TLSServerSettings(key=self.pki.serverKey, cert=self.pki.serverCert, clientCA=clientCA)
        fixture = ServerFixture(self, "tls:0:interface=127.0.0.1", tls=settings)
        self.port = (await fixture.start()).port
        return fixture

    async def refused(self, tls: TLSClientSettings) -> tuple[Client, EchoRecorder, Any]:
        """
        Connect with C{maxAttempts=1} and expect to give up.

        @param tls: the client's TLS settings.
        @return: the client, its listener and the L{ConnectGaveUpError}.
        """
        client, listener = startClient(self, f"tls:127.0.0.1:{self.port}", tls=tls, reconnect=ONCE)
        error = await self.assertFailure(bounded(client.whenConnected(), "giving up"), ConnectGaveUpError)
        self.assertEqual(client._slots[0].state, _slot.GAVE_UP)
        return client, listener, error

    async def test_verified(self) -> None:
        """
        A client that trusts the server's CA connects to tls:127.0.0.1 and
        to tls:localhost (the certificate names both) and echoes.
        """
        await self.startTLSServer()
        for host in ("127.0.0.1", "localhost"):
            client, listener = startClient(
                self, f"tls:{host}:{self.port}", tls=TLSClientSettings(caFile=self.pki.caCert), connections=2
            )
            await bounded(client.whenAllConnected(), f"2 TLS sessions to {host}")
            await checkEchoes(self, client, listener, host.encode())
            self.assertEqual(listener.errors, [])

    async def test_hostnameMismatch(self) -> None:
        """
        A certificate that does not name the host dialled is refused: the
        session never opens, onError and the slot's lastFailure carry a
        L{TLSHandshakeError} about the hostname mismatch, and whenConnected
        fails with L{ConnectGaveUpError} after maxAttempts=1.
        """
        server = await self.startTLSServer()
        tls = TLSClientSettings(caFile=self.pki.caCert, hostname="wrong.example")
        client, listener, error = await self.refused(tls)
        self.assertIn("hostname mismatch", str(error))
        self.assertNotIn("open", listener.names())
        [failure] = listener.errors
        self.assertTrue(failure.check(TLSHandshakeError))
        self.assertIn("hostname mismatch", failure.getErrorMessage())
        self.assertIn("wrong.example", failure.getErrorMessage())
        self.assertTrue(client._slots[0].lastFailure.check(TLSHandshakeError))
        self.assertEqual((client.opened, client.failures), (0, 1))
        await server.listener.whenCount("error", 1)
        self.assertEqual(server.server.opened, 0)

    async def test_untrustedServer(self) -> None:
        """
        A server certificate from a CA the client does not trust is refused
        with a TLSHandshakeError naming the certificate, its CA and caFile.
        """
        await self.startTLSServer()
        _, listener, error = await self.refused(TLSClientSettings(caFile=self.pki.untrustedCaCert))
        self.assertNotIn("open", listener.names())
        [failure] = listener.errors
        self.assertTrue(failure.check(TLSHandshakeError))
        self.assertIn("certificate verify failed", failure.getErrorMessage())
        self.assertIn("the server's certificate 'localhost' is signed by a CA (txgetty test CA) that is "
                      "not trusted here: trust that CA with caFile=/--ca-file", failure.getErrorMessage())
        self.assertIn("certificate verify failed", str(error))

    async def test_mutualTLS(self) -> None:
        """
        A server that requires client certificates accepts one signed by
        its client CA, and sees who the client is.
        """
        server = await self.startTLSServer(clientCA=self.pki.caCert)
        tls = TLSClientSettings(caFile=self.pki.caCert, cert=self.pki.clientCert, key=self.pki.clientKey)
        client, listener = startClient(self, f"tls:127.0.0.1:{self.port}", tls=tls)
        await bounded(client.whenConnected(), "a mutual-TLS session")
        await checkEchoes(self, client, listener, b"mtls")
        [peer] = server.server.sessions()
        subject = peer.transport.getPeerCertificate().get_subject()
        self.assertEqual(subject.commonName, "txgetty test client")

    async def clientCertificateRefused(self, tls: TLSClientSettings, serverWords: str) -> EchoRecorder:
        """
        Connect to a mutual-TLS server that must refuse the client's
        certificate, with C{maxAttempts=1}.

        Under TLS 1.3 the client finishes its handshake before the server
        checks the client certificate, so the client session may open and
        then die at once; under TLS 1.2 it fails in the handshake.  Either
        way the server never opens a session, the client gets an error and
        no packet, and its slot gives up.

        @param tls: the client's TLS settings.
        @param serverWords: what the server's error must say.
        @return: the client's listener.
        """
        server = await self.startTLSServer(clientCA=self.pki.caCert)
        client, listener = startClient(self, f"tls:127.0.0.1:{self.port}", tls=tls, reconnect=ONCE)
        await server.listener.whenCount("error", 1)
        await listener.whenCount("error", 1)
        self.assertEqual(server.server.opened, 0)
        [serverFailure] = server.listener.errors
        self.assertTrue(serverFailure.check(TLSHandshakeError))
        self.assertIn(serverWords, serverFailure.getErrorMessage())
        if "open" in listener.names():
            await listener.whenCount("close", 1)
        self.assertNotIn("message", listener.names())
        self.assertEqual(client.sessions(), [])
        self.assertEqual(client._slots[0].state, _slot.GAVE_UP)
        await self.assertFailure(bounded(client.whenConnected(), "giving up"), ConnectGaveUpError)
        return listener

    async def test_mutualTLSWithoutCertificate(self) -> None:
        """
        A client without a certificate is refused by a mutual-TLS server:
        the server never opens a session and says no certificate came; the
        client gets an error and gives up after maxAttempts=1.
        """
        await self.clientCertificateRefused(
            TLSClientSettings(caFile=self.pki.caCert), "presented no certificate"
        )

    async def test_mutualTLSUntrustedClient(self) -> None:
        """
        A client certificate from a CA the server does not trust is refused:
        the server never opens a session and says the certificate is not
        signed by a trusted CA; the client gets an error and gives up.
        """
        tls = TLSClientSettings(
            caFile=self.pki.caCert, cert=self.pki.untrustedClientCert, key=self.pki.untrustedClientKey
        )
        await self.clientCertificateRefused(tls, "certificate verify failed")

    async def test_clientCertificateRefusedInPlainWords(self) -> None:
        """
        The client is told in plain words (a L{TLSHandshakeError}) that the
        server rejected its certificate, as L{txgetty.transports.tls} words it ("the
        peer rejected our certificate ..."), not with a raw OpenSSL error.
        """
        tls = TLSClientSettings(
            caFile=self.pki.caCert, cert=self.pki.untrustedClientCert, key=self.pki.untrustedClientKey
        )
        listener = await self.clientCertificateRefused(tls, "certificate verify failed")
        [failure] = listener.errors
        self.assertTrue(failure.check(TLSHandshakeError), repr(failure.value))
        self.assertIn("rejected our certificate", failure.getErrorMessage())


    async def test_insecure(self) -> None:
        """
        insecure=True connects to a server the client could not verify
        (nothing trusted, wrong name) and logs a warning containing
        "INSECURE".
        """
        await self.startTLSServer()
        logged: list[str] = []

        def observe(event: dict) -> None:
            logged.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        tls = TLSClientSettings(insecure=True, hostname="wrong.example")
        client, listener = startClient(self, f"tls:127.0.0.1:{self.port}", tls=tls)
        await bounded(client.whenConnected(), "an insecure TLS session")
        await checkEchoes(self, client, listener, b"insecure")
        warnings = [line for line in logged if "INSECURE" in line]
        self.assertTrue(warnings, f"no INSECURE warning in {logged!r}")
        self.assertIn("wrong.example", warnings[0])


class UNIXTests(TestCase):
    """The client works over UNIX sockets."""

    timeout = 30

    async def test_unixSocket(self) -> None:
        """
        A pool of 2 to unix:PATH opens, echoes, and comes back after the
        server restarts on the same path.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "s.sock")
        first = ServerFixture(self, f"unix:{path}")
        await first.start()
        client, listener = startClient(self, f"unix:{path}", connections=2)
        await bounded(client.whenAllConnected(), "2 UNIX sessions")
        await checkEchoes(self, client, listener, b"unix")
        self.assertEqual(client.selfConnects, 0)
        await first.stop()
        await listener.whenCount("close", 2)
        second = ServerFixture(self, f"unix:{path}")
        await second.start()
        await bounded(client.whenAllConnected(), "2 UNIX sessions after the restart")
        await checkEchoes(self, client, listener, b"unix-again")


class PausedListener(EchoRecorder):
    """A server listener that never reads: it pauses each new session."""

    def onOpen(self, session: Any) -> Any:
        """
        @param session: the session, whose reading stops.
        """
        super().onOpen(session)
        session.transport.pauseProducing()


class ChoiceTests(TestCase):
    """Session choice against a real server."""

    timeout = 30

    async def test_leastLoaded(self) -> None:
        """
        With choose="least-loaded", sessions with bytes waiting to be sent
        (the server does not read) are avoided: the choice is always a
        session with the fewest pending bytes, never the loaded one.
        """
        server = ServerFixture(self, listener=PausedListener())
        port = (await server.start()).port
        client, _ = startClient(
            self, f"tcp:127.0.0.1:{port}", connections=3, choose="least-loaded",
            config=SessionConfig(waitTime=0.1),
        )
        sessions = await bounded(client.whenAllConnected(), "3 sessions")
        await server.listener.whenCount("open", 3)
        heavy, light, idle = sessions
        heavy.writeBytes(b"x" * (32 * 1024 * 1024))
        light.writeBytes(b"y" * 1024)
        for when in ("at once", "after 0.2 s"):
            self.assertGreater(heavy.pendingBytes, 1024 * 1024, when)
            for _ in range(30):
                chosen = client.session()
                self.assertIsNot(chosen, heavy, when)
                self.assertEqual(chosen.pendingBytes, min(s.pendingBytes for s in sessions), when)
            await realWait(0.2)
        self.assertLessEqual(light.pendingBytes, 1024)
        self.assertEqual(idle.pendingBytes, 0)

    async def test_roundRobin(self) -> None:
        """
        With the default round-robin choice, N consecutive picks visit each
        of the N open sessions once, in a repeating order.
        """
        server = ServerFixture(self)
        port = (await server.start()).port
        client, _ = startClient(self, f"tcp:127.0.0.1:{port}", connections=4)
        sessions = await bounded(client.whenAllConnected(), "4 sessions")
        picks = [client.session() for _ in range(8)]
        self.assertEqual(set(picks[:4]), set(sessions))
        self.assertEqual(picks[:4], picks[4:])


class StopAndTimeoutTests(TestCase):
    """Stopping ends all dialling; a hanging dial ends at connectTimeout."""

    timeout = 30

    async def stalledTLS(self, **clientArgs: Any) -> tuple[ServerFixture, Client, EchoRecorder]:
        """
        Dial a plain TCP server that never reads as if it spoke TLS: the
        TCP connection is made but the handshake never completes.

        @param clientArgs: more L{Client} arguments.
        @return: the server, the client and its listener, once the server
            accepted the connection.
        """
        server = ServerFixture(self, listener=PausedListener())
        port = (await server.start()).port
        tls = TLSClientSettings(caFile=testCertificates().caCert)
        client, listener = startClient(self, f"tls:127.0.0.1:{port}", tls=tls, **clientArgs)
        await server.listener.whenCount("open", 1)
        return server, client, listener

    async def test_stopDuringBackoff(self) -> None:
        """
        Stopping the client while a slot waits to re-dial (after the server
        refused it) cancels the retry: no connection comes afterwards.
        """
        server = ServerFixture(self, listener=RefusingListener())
        port = (await server.start()).port
        policy = ReconnectPolicy(initialDelay=0.2, maxDelay=0.5, jitter=0.1)
        client, listener = startClient(self, f"tcp:127.0.0.1:{port}", reconnect=policy)
        await listener.whenCount("close", 1)
        self.assertEqual(client._slots[0].state, _slot.WAITING)
        await bounded(client.stopService(), "the client to stop")
        self.assertEqual(client._slots[0].state, _slot.STOPPED)
        await realWait(0.4)
        self.assertEqual(server.server.accepted, 1)
        self.assertEqual(client.dials, 1)

    async def test_stopDuringDial(self) -> None:
        """
        Stopping the client while its dial hangs in the TLS handshake
        abandons that dial (the session never opens) and dials nothing more.
        """
        server, client, listener = await self.stalledTLS()
        self.assertEqual(client._slots[0].state, _slot.DIALING)
        await bounded(client.stopService(), "the client to stop")
        self.assertEqual(client._slots[0].state, _slot.STOPPED)
        await realWait(0.3)
        self.assertEqual((server.server.accepted, client.dials, client.opened), (1, 1, 0))
        self.assertNotIn("open", listener.names())

    async def test_connectTimeout(self) -> None:
        """
        A dial whose handshake never completes fails after connectTimeout
        with L{ConnectTimeoutError}; with maxAttempts=1, whenConnected fails
        with L{ConnectGaveUpError} naming the setting.
        """
        _, client, listener = await self.stalledTLS(connectTimeout=0.3, reconnect=ONCE)
        error = await self.assertFailure(bounded(client.whenConnected(), "giving up"), ConnectGaveUpError)
        self.assertIn("connectTimeout", str(error))
        self.assertTrue(client._slots[0].lastFailure.check(ConnectTimeoutError))
        self.assertEqual((client.dials, client.opened, client.failures), (1, 0, 1))
        self.assertNotIn("open", listener.names())
