"""
The C{txgetty} command: client tools for any getty-style server::

  txgetty send ADDRESS [--codec hello] PAYLOAD...   send packets, print the replies
  txgetty bench ADDRESS [-c 50] [-w 32] [-s 915]    load-test an echo-style server

ADDRESS is C{HOST:PORT}, C{tcp:HOST:PORT}, C{tls:HOST:PORT} or C{unix:PATH}.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from twisted.internet import defer
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import react
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogBeginner
from twisted.python.failure import Failure
from zope.interface import provider

from .client import Client
from .codec import codecFromString
from .config import SessionConfig
from .errors import ConfigError, TxGettyError
from .listener import EventListener
from .loadgen import BenchOptions, printResult, runBench
from .reconnect import ReconnectPolicy
from .tls import TLSClientSettings

_DESCRIPTION = """client tools for any getty-style server

  txgetty send ADDRESS [--codec hello] PAYLOAD...   send packets, print the replies
  txgetty call ADDRESS Service.method [JSON]...     call an RPC method, print the JSON result
  txgetty bench ADDRESS [-c 50] [-w 32] [-s 915]    load-test an echo-style server (--rpc: RPC)

ADDRESS is HOST:PORT, tcp:HOST:PORT, tls:HOST:PORT or unix:PATH."""


def _tlsArguments(parser: argparse.ArgumentParser) -> None:
    """
    @param parser: a subcommand parser to add the TLS options to.
    """
    group = parser.add_argument_group("TLS (for tls:HOST:PORT addresses)")
    group.add_argument("--ca-file", help="PEM CAs to trust instead of the platform's")
    group.add_argument("--cert", help="PEM client certificate, for servers that require one")
    group.add_argument("--key", help="PEM private key of --cert")
    group.add_argument("--hostname", help="name to verify instead of the host dialled")
    group.add_argument("--insecure", action="store_true",
                       help="do NOT verify the server certificate (anyone can intercept)")


def _tls(args: argparse.Namespace) -> TLSClientSettings:
    """
    @param args: parsed arguments.
    @return: the TLS client settings they describe.
    """
    return TLSClientSettings(args.ca_file, args.cert, args.key, args.hostname, args.insecure)


def buildParser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """
    @return: the parser of the C{txgetty} command and its subcommands'
        parsers by name.
    """
    parser = argparse.ArgumentParser(
        prog="txgetty", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="send packets and print the replies")
    send.add_argument("address", help="HOST:PORT, tcp:HOST:PORT, tls:HOST:PORT or unix:PATH")
    send.add_argument("payloads", nargs="*", metavar="PAYLOAD",
                      help="one packet each (UTF-8 text, or hex with --hex); stdin lines if none")
    send.add_argument("--codec", default="hello",
                      help="hello (default), length:SIZE[:big|little], line, delimiter:HEX, raw")
    send.add_argument("--hex", action="store_true", help="payloads and replies in hex")
    send.add_argument("--expect", type=int, default=None,
                      help="replies to wait for (default: one per packet sent)")
    send.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for them (default 5)")
    _tlsArguments(send)
    call = sub.add_parser("call", help="call an RPC method and print the JSON result")
    call.add_argument("address", help="HOST:PORT (txgetty's RPC demo: 127.0.0.1:8091), tls:HOST:PORT, ...")
    call.add_argument("method", help="Service.method, e.g. Echo.echo")
    call.add_argument("arguments", nargs="*", metavar="JSON", help='positional arguments as JSON ("text", 42, [1,2])')
    call.add_argument("--kwargs", default=None, help="keyword arguments as a JSON object")
    call.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                      help="a head map entry to send (repeatable)")
    call.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (default 10)")
    call.add_argument("--serializer", default="json", choices=["json", "msgpack"],
                      help="json (default) or msgpack (the msgpack extra)")
    call.add_argument("--auth", default=None, help="an auth token for servers that ask for one")
    _tlsArguments(call)
    bench = sub.add_parser("bench", help="load-test an echo-style server")
    bench.add_argument("address", help="HOST:PORT, tcp:HOST:PORT, tls:HOST:PORT or unix:PATH")
    bench.add_argument("--codec", default="hello", help="packet framing (default hello)")
    bench.add_argument("-c", "--connections", type=int, default=50, help="connections (default 50)")
    bench.add_argument("-w", "--window", type=int, default=32, help="packets in flight per connection (32)")
    bench.add_argument("-s", "--size", type=int, default=915, help="payload bytes (default 915, as getty's)")
    bench.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds (default 10)")
    bench.add_argument("-n", "--count", type=int, default=0,
                       help="fixed work instead of --duration: echoes per connection")
    bench.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first (default 1)")
    bench.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    bench.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    bench.add_argument("--rpc", action="store_true",
                       help="call Echo.echo with a SIZE-character string instead of echoing packets")
    _tlsArguments(bench)
    return parser, {"send": send, "call": call, "bench": bench}


class _Printer(EventListener):
    """
    Prints every reply and fires when enough have come.
    """

    def __init__(self, expected: int, asHex: bool, done: Deferred) -> None:
        self.expected = expected
        self.asHex = asHex
        self.done = done
        self.received = 0

    def onMessage(self, session: Any, pkg: Any) -> None:
        data = bytes(pkg) if not isinstance(pkg, str) else pkg.encode()
        if self.asHex:
            print(data.hex(), flush=True)
        else:
            print(data.decode("utf-8", "backslashreplace"), flush=True)
        self.received += 1
        if self.received >= self.expected and not self.done.called:
            self.done.callback(None)

    def onError(self, session: Any, failure: Failure) -> None:
        if not self.done.called:
            self.done.errback(failure)

    def onClose(self, session: Any) -> None:
        if not self.done.called:
            self.done.errback(Failure(TxGettyError(
                f"the server closed the connection after {self.received} of {self.expected} replies"
            )))


def _payloads(args: argparse.Namespace) -> list[bytes]:
    """
    @param args: parsed arguments.
    @return: the packets to send.
    @raise ConfigError: a payload is not valid hex under C{--hex}.
    """
    texts = args.payloads or [line.rstrip("\n") for line in sys.stdin]
    if not args.hex:
        return [t.encode("utf-8") for t in texts]
    try:
        return [bytes.fromhex(t) for t in texts]
    except ValueError as e:
        raise ConfigError(f"--hex payloads must be hex digits: {e}") from None


@inlineCallbacks
def send(reactor: Any, args: argparse.Namespace) -> Any:
    """
    Connect once, send the payloads as packets, print the replies.

    @param reactor: the reactor.
    @param args: parsed arguments.
    @return: a L{Deferred} that fails if the replies do not all come.
    """
    codec = codecFromString(args.codec)
    payloads = _payloads(args)
    expected = len(payloads) if args.expect is None else args.expect
    done: Deferred = Deferred()
    printer = _Printer(expected, args.hex, done)

    def newSession(session: Any) -> None:
        session.codec = codec
        session.listener = printer

    client = Client(
        args.address, newSession, reactor=reactor, tls=_tls(args), connectTimeout=args.timeout,
        reconnect=ReconnectPolicy(maxAttempts=1), config=SessionConfig(packetTimeout=args.timeout),
    )
    client.startService()
    # onError may fire "done" before anybody waits on it (a failed TLS
    # handshake): what matters then is whenConnected's failure.
    done.addErrback(lambda failure: failure if client.sessions() else None)
    try:
        session = yield client.whenConnected()
        session.writePkgs(payloads)
        if expected:
            done.addTimeout(args.timeout, reactor)
            try:
                yield done
            except defer.TimeoutError:
                raise TxGettyError(
                    f"only {printer.received} of {expected} replies came within {args.timeout:g} s "
                    f"(--timeout, --expect)"
                ) from None
    finally:
        yield client.stopService()


def _jsonArgument(text: str, what: str) -> Any:
    """
    @param text: a command-line argument.
    @param what: what it is, for the message.
    @return: its JSON value.
    @raise ConfigError: it is not JSON.
    """
    try:
        return json.loads(text)
    except ValueError:
        raise ConfigError(
            f"{what} {text!r} is not JSON; quote text as JSON strings, e.g. '\"{text}\"'"
        ) from None


@inlineCallbacks
def callMethod(reactor: Any, args: argparse.Namespace) -> Any:
    """
    Call one RPC method and print its result as JSON.

    @param reactor: the reactor.
    @param args: parsed arguments.
    @return: a L{Deferred} that fails with the remote error, if any.
    """
    from .rpc import RpcClient

    values = [_jsonArgument(a, "argument") for a in args.arguments]
    kwargs = _jsonArgument(args.kwargs, "--kwargs") if args.kwargs else None
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConfigError("--kwargs must be a JSON object")
    metadata = {}
    for entry in args.metadata:
        key, eq, value = entry.partition("=")
        if not eq or not key:
            raise ConfigError(f"--metadata takes KEY=VALUE, got {entry!r}")
        metadata[key] = value
    client = RpcClient(args.address, reactor=reactor, tls=_tls(args), timeout=args.timeout,
                       serializer=args.serializer, auth=args.auth, connectTimeout=args.timeout,
                       reconnect=ReconnectPolicy(maxAttempts=1))
    client.startService()
    try:
        result = yield client.call(args.method, *values, kwargs=kwargs, metadata=metadata or None)
        print(json.dumps(result, ensure_ascii=False, default=repr))
    finally:
        yield client.stopService()


@inlineCallbacks
def bench(reactor: Any, args: argparse.Namespace) -> Any:
    """
    Run a load test and print its summary.

    @param reactor: the reactor.
    @param args: parsed arguments.
    @return: a L{Deferred} that fails if the run had errors.
    """
    options = BenchOptions(
        address=args.address, codec=args.codec, connections=args.connections, window=args.window,
        size=args.size, duration=args.duration, count=args.count, warmup=args.warmup,
        progress=not args.quiet, tls=_tls(args), rpc=args.rpc,
    )
    codecFromString(options.codec)
    for name in ("connections", "window", "size"):
        if getattr(options, name) < 1:
            raise ConfigError(f"--{name} must be 1 or more")
    result = yield runBench(reactor, options)
    printResult(result, args.json)
    if result["errors"]:
        raise TxGettyError(f"{result['errors']} errors; first: {result['first_error']}")


def _run(reactor: Any, args: argparse.Namespace) -> Deferred:
    """
    @return: the Deferred of the chosen subcommand, with errors printed as
        one line and turned into exit code 1.
    """
    d = {"send": send, "call": callMethod, "bench": bench}[args.command](reactor, args)

    def report(failure: Failure) -> None:
        print(f"txgetty {args.command}: {type(failure.value).__name__}: {failure.getErrorMessage()}",
              file=sys.stderr)
        raise SystemExit(1)

    return d.addErrback(report)


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of the C{txgetty} command.

    @param argv: the arguments (C{sys.argv[1:]} if C{None}).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, commands = buildParser()
    if not argv or argv[0] not in commands:
        parser.parse_args(argv)
    # Options may come between payloads: parse each subcommand intermixed.
    args = commands[argv[0]].parse_intermixed_args(argv[1:])
    args.command = argv[0]
    globalLogBeginner.beginLoggingTo([_warningsToStderr], redirectStandardIO=False)
    react(_run, [args])


@provider(ILogObserver)
def _warningsToStderr(event: dict) -> None:
    """
    Show the library's errors, and its TLS warnings (INSECURE), on stderr.
    Connection failures are not repeated here: the command reports them.

    @param event: a log event.
    """
    level = event.get("log_level")
    if level is None or level < LogLevel.warn:
        return
    if level < LogLevel.error and event.get("log_namespace") != "txgetty.tls":
        return
    text = formatEvent(event)
    if text:
        print(f"txgetty: {level.name}: {text.removeprefix('txgetty: ')}", file=sys.stderr)
