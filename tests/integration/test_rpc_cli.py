"""
Tests for the RPC commands of C{txgetty}: C{txgetty call} and C{txgetty
bench --rpc}, run as the real console script (next to C{sys.executable})
in a subprocess against an L{RpcServer} started in this process on
127.0.0.1 port 0.
"""

from __future__ import annotations

from typing import Any
import json

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from txgetty.rpc import RpcServer, registerBuiltins

from ..support.processes import runTxgetty
from ..support.rpc import Failing, Plain, RecordingHook, calcServer, jsonArgs, startServer


class RpcCommandTestCase(TestCase):
    """
    Starts an in-process RPC server for the command to call.
    """

    timeout = 60

    async def startRpc(self, **kw: Any) -> tuple[str, RpcServer]:
        """
        Start a server with C{Calc}, C{Plain}, C{Failing} and the built-in
        services; the test stops it at its end.

        @param kw: more L{RpcServer} arguments.
        @return: its C{HOST:PORT} address and the server.
        """
        rpc = calcServer(reactor, **kw)
        rpc.register(Plain())
        rpc.register(Failing())
        registerBuiltins(rpc)
        return await startServer(self, rpc), rpc


class CallTests(RpcCommandTestCase):
    """
    C{txgetty call ADDRESS Service.method JSON...}.
    """

    async def test_result(self) -> None:
        """
        The JSON arguments reach the method; the result is printed as JSON
        (UTF-8, not escaped) and the exit code is 0.
        """
        address, _ = await self.startRpc()
        out, err, code = await runTxgetty("call", address, "Calc.add", *jsonArgs(40, 2))
        self.assertEqual((out, code), ("42\n", 0), err)
        value = {"text": "é", "list": [1, None, True]}
        out, err, code = await runTxgetty("call", address, "Echo.echo", json.dumps(value))
        self.assertEqual((json.loads(out), code), (value, 0), err)
        self.assertIn("é", out)

    async def test_kwargsAndMetadata(self) -> None:
        """
        C{--kwargs} gives keyword arguments; C{--metadata KEY=VALUE} entries
        reach the server's head map; C{--serializer msgpack} works too.
        """
        hook = RecordingHook()
        address, _ = await self.startRpc(hooks=[hook])
        out, err, code = await runTxgetty(
            "call", address, "Plain.greet", '"you"', "--kwargs", '{"punctuation": "?"}',
            "--metadata", "trace-id=abc", "--metadata", "user=ann", "--serializer", "msgpack",
        )
        self.assertEqual((out, code), ('"hello you?"\n', 0), err)
        [info] = [e[1] for e in hook.events if e[0] == "before"]
        self.assertEqual((info.head["trace-id"], info.head["user"]), ("abc", "ann"))

    async def test_remoteError(self) -> None:
        """
        A remote error is printed on stderr with its type, message and code,
        nothing on stdout, and the exit code is 1.
        """
        address, _ = await self.startRpc()
        out, err, code = await runTxgetty("call", address, "Failing.coded")
        self.assertEqual((out, code), ("", 1))
        self.assertIn("RemoteError: ValueError: the value is wrong (code E42)", err)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)  # a bug of the method: logged with traceback
        out, err, code = await runTxgetty("call", address, "Calc.nope")
        self.assertEqual(code, 1)
        self.assertIn("NoSuchMethod", err)
        self.assertIn("methods: add, note, wait, where", err)

    async def test_badArguments(self) -> None:
        """
        An argument that is not JSON, or C{--kwargs} that is not an object,
        is refused with a hint and exit code 1, without calling.
        """
        address, rpc = await self.startRpc()
        out, err, code = await runTxgetty("call", address, "Echo.echo", "bare words")
        self.assertEqual(code, 1)
        self.assertIn("is not JSON", err)
        self.assertIn("quote text as JSON strings", err)
        out, err, code = await runTxgetty("call", address, "Echo.echo", "--kwargs", "[1]")
        self.assertEqual(code, 1)
        self.assertIn("--kwargs must be a JSON object", err)
        self.assertEqual(rpc.calls, 0)

    async def test_auth(self) -> None:
        """
        C{--auth} sends the token: the right one is served, a wrong one
        gets AuthError and exit code 1.
        """
        address, _ = await self.startRpc(auth=lambda token, session: token == "pw")
        out, err, code = await runTxgetty("call", address, "Ping.ping", "--auth", "pw")
        self.assertEqual((out, code), ('"pong"\n', 0), err)
        out, err, code = await runTxgetty("call", address, "Ping.ping", "--auth", "guess")
        self.assertEqual(code, 1)
        self.assertIn("AuthError", err)

    async def test_noServer(self) -> None:
        """
        Calling an address where nothing listens fails with exit code 1 and
        a one-line error, in bounded time.
        """
        address, rpc = await self.startRpc()
        await rpc.stopService()
        out, err, code = await runTxgetty("call", address, "Ping.ping", "--timeout", "3")
        self.assertEqual((out, code), ("", 1))
        self.assertTrue(err.startswith("txgetty call: "), err)
        self.assertIn(address, err)


class BenchTests(RpcCommandTestCase):
    """
    C{txgetty bench --rpc}.
    """

    async def test_json(self) -> None:
        """
        C{bench --rpc -n 100 -c 2 -w 4 --json -q} against an RPC server
        prints one JSON line: 200 calls, no error, ordered latencies; the
        server counted them.
        """
        address, rpc = await self.startRpc()
        out, err, code = await runTxgetty("bench", address, "--rpc", "-n", "100", "-c", "2", "-w", "4", "--json",
                                          "-q")
        self.assertEqual(code, 0, err)
        [line] = out.strip().splitlines()
        result = json.loads(line)
        self.assertEqual((result["msgs"], result["errors"], result["connections"]), (200, 0, 2))
        latencies = [result[n] for n in ("lat_p50_us", "lat_p90_us", "lat_p99_us", "lat_max_us")]
        self.assertEqual(latencies, sorted(latencies))
        self.assertGreaterEqual(rpc.calls, 200)
        self.assertEqual(rpc.errors, 0)


class CallErrorTests(RpcCommandTestCase):
    """
    The mistakes of C{txgetty call}: one line on standard error, exit 1.
    """

    async def test_badMethodName(self) -> None:
        """
        A method without a service is refused before connecting.
        """
        out, err, code = await runTxgetty("call", "127.0.0.1:1", "Echo")
        self.assertEqual((out, code), ("", 1))
        self.assertEqual(err, "txgetty call: the method must be Service.method (e.g. Echo.echo), got 'Echo'\n")

    async def test_badJSONExample(self) -> None:
        """
        The hint for an argument that is not JSON is the argument quoted as
        a JSON string, ready to paste.
        """
        out, err, code = await runTxgetty("call", "127.0.0.1:1", "Echo.echo", '"hi')
        self.assertEqual(code, 1)
        self.assertIn("""e.g. '"\\"hi"'""", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    async def test_refused(self) -> None:
        """
        Nothing listening: the cause in plain words.
        """
        address, rpc = await self.startRpc()
        await rpc.stopService()
        out, err, code = await runTxgetty("call", address, "Ping.ping", "--timeout", "3")
        self.assertEqual((out, code), ("", 1))
        self.assertEqual(err.strip(), f"txgetty call: cannot connect to tcp:{address}: connection refused: nothing "
                                      f"listens there (is the server running, on that port?) [ConnectionRefusedError]")

    async def test_timeout(self) -> None:
        """
        A server that accepts but does not speak RPC: the call times out,
        one line naming the timeout.
        """
        from twisted.internet.defer import Deferred

        from txgetty.codec import HelloCodec
        from txgetty.handlers import EventListener
        from txgetty.server import Server

        def newSession(session: Any) -> None:
            session.codec = HelloCodec()
            session.listener = EventListener()

        server = Server(["tcp:0:interface=127.0.0.1"], newSession, reactor=reactor)
        server.startService()
        self.addCleanup(server.stopService)
        d: Deferred = server.whenListening()
        [address] = await d
        out, err, code = await runTxgetty("call", f"127.0.0.1:{address.port}", "Ping.ping", "--timeout", "1")
        self.assertEqual((out, code), ("", 1), err)
        self.assertEqual(err.strip(), "txgetty call: CallTimeoutError: Ping.ping got no answer within 1 s (timeout)")
