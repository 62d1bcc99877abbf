"""
Tests for the C{txgetty} command (L{txgetty.tools.cli}): the real console script
runs as a subprocess against txgetty servers started in this process on
127.0.0.1 port 0.
"""

from __future__ import annotations

from typing import Any
import json

from twisted.trial.unittest import TestCase

from txgetty.codec import LineCodec
from txgetty.handlers import EventListener
from txgetty.transports.tls import TLSServerSettings

from ..support.certs import testCertificates
from ..support.processes import CLITestCase, runTxgetty


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
        self.assertEqual(lines[0], (
            f"txgetty send: cannot connect to tcp:127.0.0.1:{port}: connection refused: nothing listens there "
            f"(is the server running, on that port?) [ConnectionRefusedError]"
        ))

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
        [line] = err.splitlines()
        self.assertTrue(line.startswith(f"txgetty send: cannot connect to tls:127.0.0.1:{port}: TLS handshake"), err)
        self.assertIn("is signed by a CA (txgetty test CA) that is not trusted here", line)
        self.assertIn("certificate verify failed", line)

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


class SilentListener(EventListener):
    """
    Accepts sessions and never answers.
    """


class HTTPListener(EventListener):
    """
    Answers every connection with an HTTP error, as a web server would.
    """

    def onOpen(self, session: Any) -> None:
        """
        @param session: the session.
        """
        session.writeBytes(b"HTTP/1.1 400 Bad Request\r\n\r\n")


def assertOneLine(testCase: TestCase, err: str, prefix: str) -> str:
    """
    Check that standard error is one line starting with C{prefix}, without
    a traceback or an unhandled-error report.

    @return: the line.
    """
    testCase.assertNotIn("Traceback", err)
    testCase.assertNotIn("Unhandled error", err)
    testCase.assertNotIn("FirstError", err)
    lines = err.strip().splitlines()
    testCase.assertEqual(len(lines), 1, err)
    testCase.assertTrue(lines[0].startswith(prefix), err)
    return lines[0]


class ErrorPathTests(CLITestCase):
    """
    Every mistake a new user makes gives one clear line on standard error
    and a non-zero exit code (1 for what happened, 2 for a bad command
    line), never a traceback.
    """

    async def test_sendHelpListsEveryAddressForm(self) -> None:
        """
        txgetty send --help names every address form that works, udp: and
        ws:// included; bench's names the stream forms.
        """
        out, _, code = await runTxgetty("send", "--help")
        self.assertEqual(code, 0)
        text = " ".join(out.split())
        for form in ("HOST:PORT", "tcp:HOST:PORT", "tls:HOST:PORT", "unix:PATH", "udp:HOST:PORT",
                     "ws://HOST:PORT/PATH", "wss://HOST:PORT/PATH", "[::1]:PORT"):
            self.assertIn(form, text)
        out, _, _ = await runTxgetty("call", "--help")
        self.assertIn("udp:HOST:PORT", " ".join(out.split()))

    async def test_udpAndWebSocketWork(self) -> None:
        """
        The udp: and ws:// forms of the help work with send.
        """
        port = await self.startServer(endpoint="udp:0:interface=127.0.0.1")
        out, err, code = await runTxgetty("send", f"udp:127.0.0.1:{port}", "over udp")
        self.assertEqual((out, code), ("over udp\n", 0), err)
        port = await self.startServer(endpoint="ws://127.0.0.1:0/")
        out, err, code = await runTxgetty("send", f"ws://127.0.0.1:{port}/", "over ws")
        self.assertEqual((out, code), ("over ws\n", 0), err)

    async def test_badAddresses(self) -> None:
        """
        A port out of range, no port, or an unknown form: one line, exit 1.
        """
        for address, needle in (
            ("127.0.0.1:99999", "the port of '127.0.0.1:99999' must be a number 1-65535, got '99999'"),
            ("127.0.0.1:0", "must be a number 1-65535, got '0'"),
            ("ws://127.0.0.1:99999/", "must be a number 1-65535"),
            ("nonsense", "cannot connect to 'nonsense'; examples: "),
        ):
            out, err, code = await runTxgetty("send", address, "x")
            self.assertEqual((out, code), ("", 1), err)
            self.assertIn(needle, assertOneLine(self, err, "txgetty send: "))

    async def test_unknownHost(self) -> None:
        """
        A host name that does not resolve says so.
        """
        out, err, code = await runTxgetty("send", "no-such-host.invalid:8090", "--timeout", "5", "x")
        self.assertEqual(code, 1, err)
        line = assertOneLine(self, err, "txgetty send: cannot connect to tcp:no-such-host.invalid:8090: ")
        self.assertIn("unknown host", line)

    async def test_badOptions(self) -> None:
        """
        A bad number, a bad codec or a missing argument: one line naming
        the option, exit 2 (argparse) or 1 (the codec).
        """
        for argv, status, needle in (
            (["send", "127.0.0.1:1", "--timeout", "abc", "x"], 2,
             "argument --timeout: takes a number of seconds, more than 0; got 'abc'"),
            (["send", "127.0.0.1:1", "--timeout", "-1", "x"], 2, "argument --timeout"),
            (["send", "127.0.0.1:1", "--expect", "-2", "x"], 2, "argument --expect"),
            (["bench", "127.0.0.1:1", "-c", "0"], 2, "argument -c/--connections: takes a whole number"),
            (["bench", "127.0.0.1:1", "-d", "nan"], 2, "argument -d/--duration"),
            (["call", "127.0.0.1:1", "Echo.echo", "--serializer", "xml"], 2, "argument --serializer"),
            (["send", "127.0.0.1:1", "--codec", "morse", "x"], 1, "unknown codec 'morse'"),
            (["bench", "127.0.0.1:1", "--codec", "morse"], 1, "unknown codec 'morse'"),
            (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        ):
            out, err, code = await runTxgetty(*argv)
            self.assertEqual(code, status, (argv, err))
            self.assertIn(needle, assertOneLine(self, err, "txgetty"), argv)

    async def test_replyInAnotherFraming(self) -> None:
        """
        A server that answers in another protocol (HTTP) is named as such,
        with the codec option.
        """
        port = await self.startServer(listener=HTTPListener, codec=LineCodec)
        out, err, code = await runTxgetty("send", f"127.0.0.1:{port}", "x")
        self.assertEqual(code, 1, err)
        line = assertOneLine(self, err, "txgetty send: the server's reply does not fit --codec hello")
        self.assertIn("exceeds the limit", line)

    async def test_sendToSilentServer(self) -> None:
        """
        A server that never answers: one line saying no reply came, exit 1.
        """
        port = await self.startServer(listener=SilentListener)
        out, err, code = await runTxgetty("send", f"127.0.0.1:{port}", "--timeout", "1", "x")
        self.assertEqual(code, 1, err)
        assertOneLine(self, err, "txgetty send: only 0 of 1 replies came within 1 s")

    async def test_benchRefused(self) -> None:
        """
        bench against a refused port: one line, exit 1, no unhandled errors.
        """
        port = await self.freePort()
        out, err, code = await runTxgetty("bench", f"127.0.0.1:{port}", "-c", "20", "-d", "1", "-q")
        self.assertEqual((out, code), ("", 1), err)
        line = assertOneLine(self, err, f"txgetty bench: cannot connect to tcp:127.0.0.1:{port}: connection refused")
        self.assertIn("(20 of 20 connections failed)", line)

    async def test_benchZeroAnswers(self) -> None:
        """
        bench against a server that never answers exits 1 with one line,
        in --duration mode at the end of the run and in --count mode after
        --timeout seconds without an answer; no summary, so no None.
        """
        port = await self.startServer(listener=SilentListener)
        for mode in (["-d", "1", "--warmup", "0"], ["-n", "10", "--timeout", "1"]):
            out, err, code = await runTxgetty("bench", f"127.0.0.1:{port}", "-c", "2", "-q", *mode)
            self.assertEqual((out, code), ("", 1), (mode, err))
            line = assertOneLine(self, err, f"txgetty bench: no answer from 127.0.0.1:{port} in 1 s")
            self.assertIn("accepted 2 connection(s) but sent no echo (codec hello) back", line)

    async def test_benchUDPRefused(self) -> None:
        """
        bench drives streams only: a udp: or ws:// address is refused in
        one line naming the forms it takes.
        """
        for address in ("udp:127.0.0.1:9", "ws://127.0.0.1:9/"):
            out, err, code = await runTxgetty("bench", address, "-q")
            self.assertEqual(code, 1, err)
            self.assertIn("drives stream servers (HOST:PORT, tcp:, tls:, unix:)", assertOneLine(self, err, "txgetty bench: "))

    def test_summaryWithoutEchoesHasNoNone(self) -> None:
        """
        The text summary of a run without a single measured echo prints no
        None (dashes instead).
        """
        from txgetty.tools.loadgen import BenchOptions, _Run, formatSummary, summarize

        text = formatSummary(summarize(_Run(BenchOptions(address="127.0.0.1:1")), 1.0, 0.1))
        self.assertNotIn("None", text)
        self.assertIn("no echo measured", text)
