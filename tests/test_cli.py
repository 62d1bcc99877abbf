"""
Tests for the C{txgetty} command (L{txgetty.cli}): the real console script
runs as a subprocess against txgetty servers started in this process on
127.0.0.1 port 0.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txgetty.codec import HelloCodec, LineCodec
from txgetty.listener import EchoListener, EventListener
from txgetty.server import Server
from txgetty.session import Session
from txgetty.tls import TLSServerSettings

from .certs import testCertificates
from .processsupport import WAIT, runTxgetty


class CorruptingListener(EventListener):
    """
    Echoes every packet with its first byte flipped.
    """

    def onMessage(self, session: Any, pkg: Any) -> None:
        """
        @param session: the session.
        @param pkg: the packet, sent back altered.
        """
        data = bytes(pkg)
        session.writePkg(bytes([data[0] ^ 0xFF]) + data[1:] if data else b"?")


class CLITestCase(TestCase):
    """
    Starts in-process servers for the command to talk to.
    """

    timeout = 60

    async def startServer(
        self,
        *,
        codec: Callable[[], Any] = HelloCodec,
        listener: Callable[[], Any] = EchoListener,
        endpoint: str = "tcp:0:interface=127.0.0.1",
        **serverArgs: Any,
    ) -> int:
        """
        Start a server; the test stops it at its end.

        @param codec: makes each session's codec.
        @param listener: makes each session's listener.
        @param endpoint: the endpoint description.
        @param serverArgs: more L{Server} arguments.
        @return: the bound port.
        """

        def newSession(session: Session) -> None:
            session.codec = codec()
            session.listener = listener()

        server = Server([endpoint], newSession, reactor=reactor, **serverArgs)
        server.startService()
        self.addCleanup(server.stopService)
        d: Deferred = server.whenListening()
        [address] = await d.addTimeout(WAIT, reactor)
        return address.port

    async def freePort(self) -> int:
        """
        @return: a loopback port nothing listens on (it just did).
        """
        server = Server(["tcp:0:interface=127.0.0.1"], lambda s: None, reactor=reactor)
        server.startService()
        [address] = await server.whenListening().addTimeout(WAIT, reactor)
        await server.stopService()
        return address.port


class SendTests(CLITestCase):
    """
    C{txgetty send}.
    """

    async def test_send(self) -> None:
        """
        Each payload goes out as one hello packet; both replies are printed,
        one a line, and the exit code is 0.
        """
        port = await self.startServer()
        out, err, code = await runTxgetty("send", f"127.0.0.1:{port}", "hello", "world")
        self.assertEqual((out, code), ("hello\nworld\n", 0), err)

    async def test_hex(self) -> None:
        """
        With --hex, payloads are read and replies printed as hex, so binary
        packets (and an empty one) go through.
        """
        port = await self.startServer()
        out, err, code = await runTxgetty("send", f"127.0.0.1:{port}", "--hex", "00ff10", "", "68690a")
        self.assertEqual((out, code), ("00ff10\n\n68690a\n", 0), err)

    async def test_stdin(self) -> None:
        """
        Without payload arguments, each line of standard input is a packet.
        """
        port = await self.startServer()
        out, err, code = await runTxgetty("send", f"tcp:127.0.0.1:{port}", stdin=b"one\ntwo\nthree\n")
        self.assertEqual((out, code), ("one\ntwo\nthree\n", 0), err)

    async def test_lineCodec(self) -> None:
        """
        --codec line talks to a line-based server.
        """
        port = await self.startServer(codec=LineCodec)
        out, err, code = await runTxgetty("send", f"127.0.0.1:{port}", "--codec", "line", "alpha", "beta")
        self.assertEqual((out, code), ("alpha\nbeta\n", 0), err)

    async def test_refused(self) -> None:
        """
        A port nobody listens on gives exit code 1 and a one-line error on
        standard error, nothing on standard output.
        """
        port = await self.freePort()
        out, err, code = await runTxgetty("send", f"127.0.0.1:{port}", "--timeout", "2", "hello")
        self.assertEqual((out, code), ("", 1), err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("txgetty send: "), err)
        self.assertIn(f"127.0.0.1:{port}", lines[0])

    async def test_expectTimesOut(self) -> None:
        """
        --expect 3 with one payload waits --timeout 0.5 s, prints the reply
        that came, then fails with exit code 1 and a message that says how
        many replies came and names the options.
        """
        port = await self.startServer()
        out, err, code = await runTxgetty(
            "send", f"127.0.0.1:{port}", "--expect", "3", "--timeout", "0.5", "only"
        )
        self.assertEqual((out, code), ("only\n", 1), err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("only 1 of 3 replies came within 0.5 s", err)
        self.assertIn("--timeout", err)


class BenchTests(CLITestCase):
    """
    C{txgetty bench}.
    """

    async def test_json(self) -> None:
        """
        With a fixed count, --json -q prints exactly one JSON line: 4
        connections x 200 echoes = 800 messages, no error, latency
        percentiles in order.
        """
        port = await self.startServer()
        out, err, code = await runTxgetty(
            "bench", f"127.0.0.1:{port}", "-c", "4", "-w", "4", "-n", "200", "--json", "-q"
        )
        self.assertEqual(code, 0, err)
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), 1, out)
        result = json.loads(lines[0])
        self.assertEqual((result["msgs"], result["errors"], result["connections"]), (800, 0, 4))
        names = ("lat_p50_us", "lat_p90_us", "lat_p99_us", "lat_p999_us", "lat_max_us")
        latencies = [result[name] for name in names]
        self.assertTrue(all(isinstance(v, (int, float)) and v > 0 for v in latencies), latencies)
        self.assertEqual(latencies, sorted(latencies))
        self.assertGreater(result["msgs_per_s"], 0)

    async def test_text(self) -> None:
        """
        Without --json the summary is printed as text: counts, rate,
        latency percentiles and errors.
        """
        port = await self.startServer()
        out, err, code = await runTxgetty("bench", f"127.0.0.1:{port}", "-c", "2", "-w", "2", "-n", "50", "-q")
        self.assertEqual(code, 0, err)
        self.assertIn("100 echoes in", out)
        self.assertIn("msg/s", out)
        self.assertIn("latency", out)
        self.assertIn("p99", out)
        self.assertIn("errors 0", out)

    async def test_corruptReplies(self) -> None:
        """
        A server that alters the echoes makes the run report errors (in the
        summary and on standard error) and exit with code 1.
        """
        port = await self.startServer(listener=CorruptingListener)
        out, err, code = await runTxgetty(
            "bench", f"127.0.0.1:{port}", "-c", "2", "-w", "2", "-n", "20", "--json", "-q"
        )
        self.assertEqual(code, 1, err)
        result = json.loads(out.strip().splitlines()[-1])
        self.assertGreater(result["errors"], 0)
        self.assertIn("differs", result["first_error"])
        self.assertIn("txgetty bench:", err)
        self.assertIn("errors", err)


class TLSTests(CLITestCase):
    """
    C{txgetty send} to a TLS server.
    """

    async def startTLSServer(self) -> int:
        """
        @return: the port of a TLS echo server whose certificate names
            127.0.0.1 and is signed by the test CA.
        """
        pki = testCertificates()
        tls = TLSServerSettings(key=pki.serverKey, cert=pki.serverCert)
        return await self.startServer(endpoint="tls:0:interface=127.0.0.1", tls=tls)

    async def test_caFile(self) -> None:
        """
        With --ca-file naming the server's CA, the send works.
        """
        port = await self.startTLSServer()
        out, err, code = await runTxgetty(
            "send", f"tls:127.0.0.1:{port}", "--ca-file", testCertificates().caCert, "hello"
        )
        self.assertEqual((out, code), ("hello\n", 0), err)

    async def test_untrusted(self) -> None:
        """
        Without --ca-file the server's certificate is not trusted (the test
        CA is not a platform CA): exit code 1 and a one-line error saying so.
        """
        port = await self.startTLSServer()
        out, err, code = await runTxgetty("send", f"tls:127.0.0.1:{port}", "--timeout", "3", "hello")
        self.assertEqual((out, code), ("", 1), err)
        first = err.splitlines()[0]
        self.assertTrue(first.startswith("txgetty send: ConnectGaveUpError: "), err)
        self.assertIn("certificate verify failed", first)

    async def test_handshakeFailureOneLine(self) -> None:
        """
        A failed TLS handshake (untrusted certificate, or a hostname
        mismatch) is reported as one line on standard error, with no
        "Unhandled error in Deferred" traceback after it.
        """
        port = await self.startTLSServer()
        ca = testCertificates().caCert
        for extra in ((), ("--ca-file", ca, "--hostname", "wrong.example")):
            _, err, code = await runTxgetty("send", f"tls:127.0.0.1:{port}", *extra, "hello")
            self.assertEqual(code, 1, err)
            self.assertNotIn("Unhandled error", err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)


    async def test_insecure(self) -> None:
        """
        With --insecure the send works without verification.
        """
        port = await self.startTLSServer()
        out, err, code = await runTxgetty("send", f"tls:127.0.0.1:{port}", "--insecure", "hello")
        self.assertEqual((out, code), ("hello\n", 0), err)

    async def test_insecureWarns(self) -> None:
        """
        --insecure tells the user on standard error that the server is not
        verified (the library logs an "INSECURE" warning; the command shows
        it).
        """
        port = await self.startTLSServer()
        out, err, code = await runTxgetty("send", f"tls:127.0.0.1:{port}", "--insecure", "hello")
        self.assertEqual((out, code), ("hello\n", 0), err)
        self.assertIn("INSECURE", err)

