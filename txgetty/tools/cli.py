"""
The C{txgetty} command: client tools for any getty-style server::

  txgetty send ADDRESS [--codec hello] PAYLOAD...   send packets, print the replies
  txgetty bench ADDRESS [-c 50] [-w 32] [-s 915]    load-test an echo-style server

ADDRESS is C{HOST:PORT}, C{tcp:HOST:PORT}, C{tls:HOST:PORT}, C{unix:PATH},
C{udp:HOST:PORT}, C{ws://HOST:PORT/PATH} or C{wss://HOST:PORT/PATH}
(C{bench}: the stream forms only).  Every error ends the command with one
line on standard error and a non-zero exit code (2 for a bad command line).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Sequence

from twisted.internet import defer
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import react
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogBeginner
from twisted.python.failure import Failure
from zope.interface import provider

from ..client.slot import describeConnectFailure
from ..client import Client
from ..codec import codecFromString
from ..config import SessionConfig
from ..discovery.errors import EtcdError
from ..discovery.etcd import EtcdClient, parseEtcdURL
from ..discovery.layout import ServerEntry, servicePrefix
from ..errors import CodecError, ConfigError, ConnectGaveUpError, ConnectTimeoutError, TLSHandshakeError, TxGettyError
from ..handlers import EventListener
from .loadgen import BenchError, BenchOptions, printResult, runBench
from .options import addArgument, option
from ..client.reconnect import ReconnectPolicy
from ..transports.tls import TLSClientSettings

_DESCRIPTION = """client tools for any getty-style server

  txgetty send ADDRESS [--codec hello] PAYLOAD...   send packets, print the replies
  txgetty call ADDRESS Service.method [JSON]...     call an RPC method, print the JSON result
  txgetty bench ADDRESS [-c 50] [-w 32] [-s 915]    load-test an echo-style server (--rpc: RPC)

ADDRESS is HOST:PORT, tcp:HOST:PORT, tls:HOST:PORT, unix:PATH, udp:HOST:PORT,
ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (bench: the first four forms)."""

#: The address forms of send and call, for their help.
_ADDRESSES = (
    "where to connect: HOST:PORT or tcp:HOST:PORT (TCP), [::1]:PORT (IPv6), tls:HOST:PORT (TLS, "
    "verified; options below), unix:PATH, udp:HOST:PORT (connected UDP, one datagram a packet), "
    "ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (WebSocket, one message a packet)"
)
#: The address forms of bench (it drives byte streams).
_STREAM_ADDRESSES = "where to connect: HOST:PORT, tcp:HOST:PORT, tls:HOST:PORT or unix:PATH"


class _Parser(argparse.ArgumentParser):
    """
    An argument parser whose errors are one line (what was wrong, and
    where the help is), exit code 2.
    """

    def error(self, message: str) -> Any:
        """
        @param message: argparse's message.
        @raise SystemExit: always, with code 2.
        """
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _number(kind: type, minimum: float, what: str, inclusive: bool = True) -> Any:
    """
    @param kind: C{int} or C{float}.
    @param minimum: the smallest value accepted.
    @param what: the unit, for the message.
    @param inclusive: whether C{minimum} itself is accepted.
    @return: an argparse type that refuses anything else, saying why.
    """

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or (isinstance(value, float) and not math.isfinite(value)) or \
                value < minimum or (value == minimum and not inclusive):
            bound = f"{minimum:g} or more" if inclusive else f"more than {minimum:g}"
            noun = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"takes {noun} of {what}, {bound}; got {text!r}")
        return value

    convert.__name__ = what
    return convert


_SECONDS = _number(float, 0, "seconds", inclusive=False)
_WARMUP = _number(float, 0, "seconds")
_ONE_OR_MORE = _number(int, 1, "units")
_COUNT = _number(int, 0, "replies")


def _tlsArguments(parser: argparse.ArgumentParser) -> None:
    """
    @param parser: a subcommand parser to add the TLS options to.
    """
    group = parser.add_argument_group("TLS (for tls:HOST:PORT and wss:// addresses)")
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
    parser = _Parser(
        prog="txgetty", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="send packets and print the replies")
    send.add_argument("address", help=_ADDRESSES)
    send.add_argument("payloads", nargs="*", metavar="PAYLOAD",
                      help="one packet each (UTF-8 text, or hex with --hex); stdin lines if none")
    addArgument(send, option("codec"))
    send.add_argument("--hex", action="store_true", help="payloads and replies in hex")
    send.add_argument("--expect", type=_COUNT, default=None,
                      help="replies to wait for (default: one per packet sent)")
    send.add_argument("--timeout", type=_SECONDS, default=5.0,
                      help="seconds to connect, and to wait for the replies (default 5)")
    _tlsArguments(send)
    call = sub.add_parser("call", help="call an RPC method and print the JSON result")
    call.add_argument("address", help=f"{_ADDRESSES}; txgetty's RPC demo is 127.0.0.1:8091; or "
                      "etcd://HOST[:PORT][/PREFIX]: a server registered there for the service (--registry)")
    call.add_argument("method", help="Service.method, e.g. Echo.echo")
    call.add_argument("arguments", nargs="*", metavar="JSON", help='positional arguments as JSON ("text", 42, [1,2])')
    call.add_argument("--kwargs", default=None, help="keyword arguments as a JSON object")
    call.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                      help="a head map entry to send (repeatable)")
    call.add_argument("--timeout", type=_SECONDS, default=10.0,
                      help="seconds to connect, and to wait for the result (default 10)")
    call.add_argument("--serializer", default="json", choices=["json", "msgpack"],
                      help="json (default) or msgpack (the msgpack extra)")
    call.add_argument("--auth", default=None, help="an auth token for servers that ask for one")
    _tlsArguments(call)
    bench = sub.add_parser("bench", help="load-test an echo-style server")
    bench.add_argument("address", help=_STREAM_ADDRESSES)
    addArgument(bench, option("codec"))
    bench.add_argument("-c", "--connections", type=_number(int, 1, "connections"), default=50,
                       help="connections (default 50)")
    bench.add_argument("-w", "--window", type=_number(int, 1, "packets"), default=32,
                       help="packets in flight per connection (32)")
    bench.add_argument("-s", "--size", type=_number(int, 1, "bytes"), default=915,
                       help="payload bytes (default 915, as getty's)")
    bench.add_argument("-d", "--duration", type=_SECONDS, default=10.0, help="measured seconds (default 10)")
    bench.add_argument("-n", "--count", type=_number(int, 0, "echoes"), default=0,
                       help="fixed work instead of --duration: echoes per connection")
    bench.add_argument("--warmup", type=_WARMUP, default=1.0, help="unmeasured seconds first (default 1)")
    bench.add_argument("--timeout", type=_SECONDS, default=10.0,
                       help="seconds to connect, and without any answer before the run fails (default 10)")
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

    def __init__(self, expected: int, asHex: bool, done: Deferred, codec: str = "hello") -> None:
        self.expected = expected
        self.asHex = asHex
        self.done = done
        self.codec = codec
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
        if failure.check(CodecError):
            failure = Failure(TxGettyError(
                f"the server's reply does not fit --codec {self.codec} (is it that kind of server?): "
                f"{failure.getErrorMessage()}"
            ))
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
    printer = _Printer(expected, args.hex, done, args.codec)

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
    except ValueError as e:
        raise ConfigError(
            f"{what} {text!r} is not JSON ({e}); quote text as JSON strings, e.g. '{json.dumps(text)}'"
        ) from None


@inlineCallbacks
def callMethod(reactor: Any, args: argparse.Namespace) -> Any:
    """
    Call one RPC method and print its result as JSON.

    @param reactor: the reactor.
    @param args: parsed arguments.
    @return: a L{Deferred} that fails with the remote error, if any.
    """
    from ..rpc import RpcClient

    service, dot, method = args.method.partition(".")
    if not (service and dot and method) or "." in method:
        raise ConfigError(f"the method must be Service.method (e.g. Echo.echo), got {args.method!r}")
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
    addresses = args.address
    if addresses.startswith("etcd://"):
        addresses = yield registeredServers(reactor, addresses, service, args.timeout)
    client = RpcClient(addresses, reactor=reactor, tls=_tls(args), timeout=args.timeout,
                       serializer=args.serializer, auth=args.auth, connectTimeout=args.timeout,
                       reconnect=ReconnectPolicy(maxAttempts=1))
    client.startService()
    try:
        # Connect first: a connection that fails is reported with its cause.
        yield client.whenConnected().addTimeout(args.timeout, reactor)
        result = yield client.call(args.method, *values, kwargs=kwargs, metadata=metadata or None)
        print(json.dumps(result, ensure_ascii=False, default=repr))
    finally:
        yield client.stopService()


@inlineCallbacks
def registeredServers(reactor: Any, url: str, service: str, timeout: float) -> Any:
    """
    Read the servers registered for a service (C{txgetty call etcd://...}).

    @param reactor: the reactor.
    @param url: C{etcd://HOST[:PORT][/PREFIX]}.
    @param service: the service name.
    @param timeout: seconds etcd may take to answer.
    @return: a L{Deferred} firing with their addresses, sorted.
    @raise ConfigError: the URL is wrong, or no server is registered.
    @raise EtcdError: etcd cannot be reached or refused the read.
    """
    endpoint, prefix = parseEtcdURL(url)
    keyPrefix = servicePrefix(prefix, service)
    etcd = EtcdClient(reactor, endpoint, timeout=timeout)
    try:
        _, values = yield etcd.getPrefix(keyPrefix)
    finally:
        yield etcd.close()
    addresses = []
    for value in values.values():
        try:
            addresses.append(ServerEntry.fromJSON(value).address)
        except ValueError:
            continue
    if not addresses:
        raise ConfigError(
            f"no server of {service} is registered in etcd at {endpoint} (no key under {keyPrefix}): is a "
            f"server running with --registry {url} (the same prefix) and serving {service}?"
        )
    return sorted(addresses)


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
        progress=not args.quiet, tls=_tls(args), rpc=args.rpc, timeout=args.timeout,
    )
    codecFromString(options.codec)
    result = yield runBench(reactor, options)
    printResult(result, args.json)
    if result["errors"]:
        raise BenchError(f"{result['errors']} errors; first: {result['first_error']}")


def _run(reactor: Any, args: argparse.Namespace) -> Deferred:
    """
    @return: the Deferred of the chosen subcommand, with errors printed as
        one line and turned into exit code 1.
    """
    d = {"send": send, "call": callMethod, "bench": bench}[args.command](reactor, args)

    def report(failure: Failure) -> None:
        print(f"txgetty {args.command}: {describeError(failure.value, args.timeout)}", file=sys.stderr)
        raise SystemExit(1)

    return d.addErrback(report)


#: Errors whose message says everything: printed without their type.
_PLAIN = (ConfigError, BenchError, TLSHandshakeError, EtcdError)


def describeError(error: BaseException, timeout: float | None = None) -> str:
    """
    @param error: why a command failed.
    @param timeout: the command's C{--timeout}, for the message.
    @return: one line saying why.
    """
    within = f"within {timeout:g} s (--timeout)" if timeout else "within --timeout"
    if isinstance(error, defer.FirstError):
        return describeError(error.subFailure.value, timeout)
    if isinstance(error, ConnectGaveUpError) and error.label:
        last = error.lastFailure
        if last is not None and last.check(ConnectTimeoutError):
            why = f"no answer {within}: the host is down, or a firewall drops the packets?"
        else:
            why = describeConnectFailure(last)
        return f"cannot connect to {error.label}: {why}"
    if isinstance(error, defer.TimeoutError):
        return f"no connection {within}: the host is down, or a firewall drops the packets?"
    text = " ".join(str(error).split()) or repr(error)
    if isinstance(error, _PLAIN) or type(error) is TxGettyError:
        return text
    return f"{type(error).__name__}: {text}"


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
    if level < LogLevel.error and event.get("log_namespace") != "txgetty.transports.tls":
        return
    text = formatEvent(event)
    if text:
        print(f"txgetty: {level.name}: {text.removeprefix('txgetty: ')}", file=sys.stderr)
