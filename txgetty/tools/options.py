"""
The options of C{twistd txgetty}, one row (L{Setting <txgetty.config.Setting>})
each: the session and listener rows of L{txgetty.config}, and the process
rows declared here.  C{tools.tap}'s C{Options} takes its C{optParameters},
C{optFlags}, repeatable options, coercion and keyword mapping from
L{OPTIONS}; docs/options.md's tables are made from it::

    python -m txgetty.tools.options --markdown          # print the tables
    python -m txgetty.tools.options --write docs/options.md
    python -m txgetty.tools.options --check docs/options.md
"""

from __future__ import annotations

import re
import sys
from typing import Any, Callable, Iterable, Mapping, Sequence

from twisted.python import usage

from ..config import (
    DEFAULT_PORT,
    LISTENER_SETTINGS,
    ORDERED_PAIRS,
    SESSION_SETTINGS,
    WHEEL_TICK,
    Choice,
    Flag,
    Number,
    Setting,
    Text,
)
from ..discovery.registration import DEFAULT_TTL, MIN_TTL
from ..errors import ConfigError
from ..rpc.serializers import DEFAULT_COMPRESS_THRESHOLD
from ..rpc.server import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, DEFAULT_SHUTDOWN_TIMEOUT
from ..workers import workerCount

DEFAULT_LISTEN = f"tcp:{DEFAULT_PORT}:interface=127.0.0.1"
DEFAULT_RPC_LISTEN = "tcp:8091:interface=127.0.0.1"


def _process(name: str, option: str, default: Any, check: Any, help: str, optionDoc: str = "",
             metavar: str = "", shown: str = "") -> Setting:
    """
    @return: a row of scope C{"process"} (see L{Setting} for the
        parameters).
    """
    return Setting(name, default, check, help, scope="process", option=option, metavar=metavar,
                   optionDoc=optionDoc or help, shown=shown)


#: The process rows before the session rows in the table.
_GENERAL = (
    _process("listen", "listen", None, Text(many=True),
             f"Listen on ENDPOINT (repeatable; default {DEFAULT_LISTEN}).",
             "listen on this endpoint (see *Endpoints*); repeatable; the default applies only when no "
             "`--listen` is given", "ENDPOINT", f"`{DEFAULT_LISTEN}`"),
    _process("codec", "codec", "hello", Text(),
             "packet framing: hello, length:SIZE[:big|little], line, delimiter:HEX, raw; hello and length "
             "specs may end with :count-header (the header counts in the packet size limit, as in getty)",
             "packet framing of every session (see *Codec specs*)", "SPEC"),
    _process("app", "app", None, Text(),
             "MODULE:CALLABLE, a new-session callback(session) to serve instead of echo; "
             "it sets session.listener (and may change session.codec and limits); raising refuses",
             "your new-session callback; `CALLABLE` may be dotted (`mymodule:room.newSession`); the session "
             "holds the `--codec` codec when it is called", "MODULE:CALLABLE", "none (the built-in echo service)"),
    _process("tlsKey", "tls-key", None, Text(), "PEM private key file for tls: listeners",
             "PEM private key for `tls:` listeners that name no `key=`", "FILE"),
    _process("tlsCert", "tls-cert", None, Text(), "PEM certificate file for tls: listeners",
             "PEM certificate for `tls:` listeners that name no `cert=`", "FILE"),
    _process("tlsChain", "tls-chain", None, Text(),
             "PEM file of intermediate certificates sent after the certificate",
             "PEM intermediate certificates, sent after the certificate", "FILE"),
    _process("tlsClientCA", "tls-client-ca", None, Text(),
             "PEM file of CAs for client certificates: when given, clients must present one (mutual TLS)",
             "PEM CA certificates; when given, clients must present a certificate signed by one of them "
             "(mutual TLS)", "FILE"),
)

#: The process rows of the task pool, after the session rows.
_POOL = (
    _process("taskPool", "task-pool", 0, Number(int, "threads"),
             "run onMessage/onCron in a pool of this many worker threads (0: in the reactor thread)",
             "run `onMessage`/`onCron` in a txgetty task pool of this many worker threads instead of the "
             "reactor thread (see [flow-control.md](flow-control.md))", "THREADS", "(no pool)"),
    _process("taskPoolUnordered", "task-pool-unordered", False, Flag(),
             "let the task pool run packets of one session concurrently, in any order",
             "let the pool run packets of one session concurrently, in any order", shown="off (ordered)"),
)

#: The process rows of the RPC server, after the listener rows.
_RPC = (
    _process("rpcListen", "rpc-listen", None, Text(many=True),
             f"Serve RPC on ENDPOINT (repeatable; default {DEFAULT_RPC_LISTEN}).",
             "serve the RPC services on this endpoint (any listener syntax above); repeatable; the default "
             "applies only when none is given ([rpc.md](rpc.md)). No RPC server starts when there is no "
             "service to serve (no `--service`, and the demo services off), and the log says so",
             "ENDPOINT", f"`{DEFAULT_RPC_LISTEN}`"),
    _process("rpc", "no-rpc", True, Flag(),
             f"do not serve the RPC services (by default on {DEFAULT_RPC_LISTEN})", "do not serve RPC at all",
             shown="off (RPC on)"),
    _process("service", "service", None, Text(many=True),
             "[NAME=]MODULE:OBJECT, an RPC service to serve (repeatable); a class is instantiated without "
             "arguments; NAME defaults to the class name.  The demo services are then not served (unless "
             "--rpc-demo).",
             "an RPC service to serve; a class is instantiated without arguments; `NAME` defaults to the class "
             "name; repeatable; turns the demo services off", "[NAME=]MODULE:OBJECT"),
    _process("rpcDemo", "rpc-demo", False, Flag(),
             "serve the demo RPC services Echo, Ping and Status (Status shows service names and uptime) even "
             "with --app, --service or a TLS listener, which turn them off",
             "serve the demo RPC services `Echo`, `Ping` and `Status` in any case, beside the `--service` ones "
             "(`Status` shows the service names and the uptime, so they are off by default once the server is "
             "your own)",
             shown="off (the demo services are served only while no `--app`, `--service` or TLS listener is "
                   "given)"),
    _process("rpcMaxInFlight", "rpc-max-in-flight", DEFAULT_MAX_IN_FLIGHT, Number(int, "calls", positive=True),
             "unfinished RPC calls per connection before ServerBusy errors",
             "unfinished RPC calls per connection before `ServerBusy` errors", "CALLS"),
    _process("rpcShutdownTimeout", "rpc-shutdown-timeout", DEFAULT_SHUTDOWN_TIMEOUT, Number(float, "seconds"),
             "seconds the RPC server lets calls in flight finish when stopping",
             "seconds a stopping RPC server lets calls in flight finish", "SECONDS"),
    _process("rpcIdleTimeout", "rpc-idle-timeout", DEFAULT_IDLE_TIMEOUT, Number(float, "seconds"),
             "seconds without any frame before an RPC connection is closed (0: never)", metavar="SECONDS"),
    _process("rpcCompressor", "rpc-compressor", "none", Text(),
             "compressor for RPC responses to clients that accept none in particular: none, zlib, gzip, ...",
             "compressor of RPC responses longer than `--rpc-compress-threshold` whose request is uncompressed "
             "and asks for no compressor: `none`, `gzip`, `zlib`, or `zstd`, `lz4`, `snappy` with their extra "
             "([rpc.md](rpc.md#serializers-and-compressors))", "NAME"),
    _process("rpcCompressThreshold", "rpc-compress-threshold", DEFAULT_COMPRESS_THRESHOLD, Number(int, "bytes"),
             "bytes above which RPC response bodies are compressed",
             "RPC response bodies longer than this are compressed", "BYTES"),
    _process("rpcAuth", "rpc-auth", None, Text(),
             "MODULE:CALLABLE, auth(token, session) -> bool or Deferred, checking each RPC connection's "
             "first request",
             "`auth(token, session)` \u2192 true, false or a `Deferred` of either, deciding on the first request "
             "of each RPC connection ([rpc.md](rpc.md#authentication))", "MODULE:CALLABLE", "none (no check)"),
    _process("rpcHook", "rpc-hook", None, Text(many=True),
             "MODULE:OBJECT, an RPC hook (connected, disconnected, beforeCall, afterCall methods); a class is "
             "instantiated without arguments (repeatable).",
             "an RPC hook (`connected`, `disconnected`, `beforeCall`, `afterCall`); a class is instantiated "
             "without arguments; repeatable ([rpc.md](rpc.md#hooks))", "MODULE:OBJECT"),
)

#: The process rows of the service registry (h2-registry's options).
_REGISTRY = (
    _process("registry", "registry", None, Text(),
             "etcd://HOST[:PORT][/PREFIX]: register every RPC service at each RPC listener's address in etcd "
             "(key PREFIX/services/<Service>/<host:port>, default prefix /txgetty) while the server runs",
             "register every RPC service at each RPC listener's address in etcd while the server runs "
             "([fleet.md](fleet.md#the-registry))", "etcd://HOST[:PORT][/PREFIX]", "none (no registry)"),
    _process("registryTtl", "registry-ttl", DEFAULT_TTL, Number(int, "seconds", minimum=MIN_TTL),
             "seconds the registry keeps a server that stopped renewing its lease (crashed)",
             "the lease TTL: how long the registry keeps a server that stopped renewing (crashed); a whole "
             "number, 2 or more", "SECONDS"),
    _process("registryAdvertise", "registry-advertise", None, Text(),
             "HOST clients reach the RPC server at, registered instead of the bound one (needed when the RPC "
             "server listens on every address, 0.0.0.0 or ::)",
             "the host clients reach the RPC server at, registered instead of the bound one; needed when it "
             "listens on every address", "HOST", "none (the bound address)"),
)

class WorkerCount:
    """
    The check of C{--workers}: a whole number of 1 or more, or C{auto} (the
    number of CPUs), read by L{workerCount <txgetty.workers.workerCount>}.
    """

    kind = int

    def checker(self, name: str) -> Callable[[Any], int]:
        """
        @param name: the setting's name, for messages.
        @return: the function that checks a value given in Python.
        """

        def check(value: Any) -> int:
            try:
                return workerCount(value)
            except ConfigError as e:
                raise ConfigError(f"{name}: {e}") from None

        return check

    def parse(self, text: str) -> int:
        """
        @param text: the option's text.
        @return: the number of workers.
        @raise ValueError: it is neither a whole number of 1 or more nor
            C{auto}.
        """
        try:
            return workerCount(text)
        except ConfigError:
            raise ValueError(text) from None

    def what(self) -> str:
        """
        @return: what the option takes, for messages and help.
        """
        return "a whole number of worker processes, 1 or more, or auto (the number of CPUs)"

    def allowed(self) -> str:
        """
        @return: the range for the docs.
        """
        return "int \u2265 1, or `auto`"


#: The process rows of workers and metrics.
_FLEET = (
    _process("workers", "workers", 1, WorkerCount(),
             "worker processes serving every listener on the same ports (1: this process serves; more: a "
             "supervisor hands the connections out, see docs/workers.md)",
             "worker processes serving every listener on the same ports: `1` (this process serves, as always), "
             "a whole number above 1, or `auto` (the number of CPUs); with more than 1 a supervisor binds the "
             "listeners and hands the connections out; `SIGHUP` reloads the workers one at a time "
             "([workers.md](workers.md))", "N"),
    _process("metrics", "metrics", None, Text(),
             "serve /metrics (Prometheus), /healthz and /readyz on this server endpoint, e.g. "
             "tcp:9464:interface=127.0.0.1 (off by default; needs pip install 'txgetty[metrics]')",
             "serve `/metrics` (Prometheus), `/healthz` and `/readyz` on this server endpoint, e.g. "
             "`tcp:9464:interface=127.0.0.1`; needs `pip install 'txgetty[metrics]'` (see "
             "[observability.md](observability.md))", "ENDPOINT", "none (off)"),
)

#: Every option of C{twistd txgetty}, in the order of docs/options.md.
OPTIONS: tuple[Setting, ...] = (
    _GENERAL + SESSION_SETTINGS + _POOL + LISTENER_SETTINGS + _RPC + _REGISTRY + _FLEET + (WHEEL_TICK,)
)

_BY_OPTION = {row.option: row for row in OPTIONS}


def option(name: str) -> Setting:
    """
    @param name: an option's name without the dashes.
    @return: its row.
    @raise KeyError: there is no such option.
    """
    return _BY_OPTION[name]


class _NamedCoercer:
    """
    Wraps the coercer of one row of C{optParameters} so that a bad value is
    refused with a message naming the option, the value and what it takes
    (Twisted's own says "Parameter type enforcement failed" and no name).

    @ivar name: the option.
    @ivar coerce: reads the text, raising C{ValueError} when it is wrong.
    @ivar what: what the option takes, for the message.
    @ivar coerceDoc: the same, for the help.
    """

    def __init__(self, name: str, coerce: Callable[[str], Any], what: str) -> None:
        self.name = name
        self.coerce = coerce
        self.what = what
        self.coerceDoc = f"({what})"

    def __call__(self, text: str) -> Any:
        try:
            return self.coerce(text)
        except (ValueError, TypeError, OverflowError):
            raise usage.UsageError(f"--{self.name} takes {self.what}, got {text!r}") from None


def _withValue(rows: Iterable[Setting]) -> list[Setting]:
    """
    @return: the rows given as C{--option VALUE} once (not flags, not
        repeatable).
    """
    return [row for row in rows if row.option and not isinstance(row.check, Flag)
            and not getattr(row.check, "many", False)]


def _name(row: Setting) -> str:
    """
    @param row: a row with an option.
    @return: its option, without the dashes.
    @raise ValueError: the row has no option.
    """
    if row.option is None:
        raise ValueError(f"{row.name} has no command-line option")
    return row.option


def parameters(rows: Iterable[Setting] = OPTIONS) -> list[list[Any]]:
    """
    @param rows: table rows.
    @return: C{optParameters} rows C{[option, None, default, help,
        coercer]} for those that take a value once; numbers get a
        L{_NamedCoercer}.
    """
    result: list[list[Any]] = []
    for row in _withValue(rows):
        check = row.check
        name = _name(row)
        coercer = _NamedCoercer(name, check.parse, check.what()) if isinstance(check, (Number, WorkerCount)) else None
        result.append([name, None, row.optionDefault, row.help, coercer])
    return result


def flags(rows: Iterable[Setting] = OPTIONS) -> list[list[Any]]:
    """
    @param rows: table rows.
    @return: C{optFlags} rows C{[option, None, help]} of the L{Flag} rows.
    """
    return [[row.option, None, row.help] for row in rows if row.option and isinstance(row.check, Flag)]


def repeatable(rows: Iterable[Setting] = OPTIONS) -> list[Setting]:
    """
    @param rows: table rows.
    @return: those whose option may be given several times (a list).
    """
    return [row for row in rows if row.option and getattr(row.check, "many", False)]


def addRepeatable(cls: type, rows: Iterable[Setting] = OPTIONS) -> type:
    """
    Give an C{usage.Options} class an C{opt_NAME} method per repeatable
    row, appending to the list C{self[option]} (which L{startLists} makes).

    @param cls: the class.
    @param rows: table rows.
    @return: the class.
    """
    for row in repeatable(rows):
        setattr(cls, "opt_" + _name(row).replace("-", "_"), _appender(_name(row), row.help))
    return cls


def _appender(key: str, doc: str) -> Callable[[Any, str], None]:
    """
    @param key: the option.
    @param doc: its help.
    @return: an C{opt_} method that appends its value to C{self[key]}.
    """

    def opt(self: Any, value: str) -> None:
        self[key].append(value)

    opt.__doc__ = doc
    return opt


def startLists(options: Any, rows: Iterable[Setting] = OPTIONS) -> None:
    """
    @param options: a fresh C{usage.Options}.
    @param rows: table rows: each repeatable one starts as an empty list.
    """
    for row in repeatable(rows):
        options[row.option] = []


def value(options: Mapping[str, Any], row: Setting) -> Any:
    """
    @param options: parsed options.
    @param row: a row with an option.
    @return: the setting's value: a L{Flag}'s turns its default around when
        the flag is given.
    """
    given = options[_name(row)]
    if isinstance(row.check, Flag):
        return (not row.default) if given else row.default
    return given


def keywords(options: Mapping[str, Any], rows: Iterable[Setting]) -> dict[str, Any]:
    """
    @param options: parsed options.
    @param rows: rows of the setting's scope (e.g. L{SESSION_SETTINGS}).
    @return: each row's value by setting name, for C{SessionConfig(**)},
        C{Server(**)} or C{RpcServer(**)}.
    """
    return {row.name: value(options, row) for row in rows if row.option}


def optionNames(rows: Iterable[Setting] = SESSION_SETTINGS) -> dict[str, str]:
    """
    @param rows: table rows.
    @return: the C{--option} of each setting given with a value (the flags
        say nothing of the setting's value in their name).
    """
    return {row.name: f"--{row.option}" for row in _withValue(rows)}


def addArgument(parser: Any, row: Setting, *names: str) -> None:
    """
    Give an C{argparse} parser (the C{txgetty} command's) the option of a
    row, with the row's default, help and check.

    @param parser: the parser or argument group.
    @param row: a row with a value (not a flag, not repeatable).
    @param names: other names of the option (e.g. C{"-c"}).
    """
    check = row.check
    extra: dict[str, Any] = {}
    if isinstance(check, Number):
        extra["type"] = _argparseType(check)
    elif isinstance(check, Choice):
        extra["choices"] = check.choices
    default = row.optionDefault
    parser.add_argument(*names, f"--{_name(row)}", default=default, help=f"{row.help} (default {default})",
                        **extra)


def _argparseType(check: Number) -> Callable[[str], Any]:
    """
    @param check: a row's check.
    @return: an C{argparse} type refusing what the check refuses, saying
        what it takes.
    """
    import argparse

    def convert(text: str) -> Any:
        try:
            return check.parse(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"takes {check.what()}; got {text!r}") from None

    convert.__name__ = check.unit
    return convert


def _cell(text: str) -> str:
    """
    @param text: Markdown text.
    @return: it, fit for one table cell.
    """
    return text.replace("|", "\\|")


def _shownOption(row: Setting) -> str:
    """
    @return: the default cell of a row in the option table.
    """
    if row.shown and not row.shown.startswith("("):
        return row.shown
    if row.optionDefault is None:
        return "none"
    return f"`{row.optionDefault}`" + (f" {row.shown}" if row.shown else "")


def _meaning(row: Setting) -> str:
    """
    @return: the meaning cell of a row in the option table: a session
        setting with a value is "C{`name`} of every session" and its
        L{optionDoc <Setting.optionDoc>}.
    """
    if row.scope == "session" and not isinstance(row.check, Flag):
        return f"`{row.name}` of every session{row.optionDoc}"
    return row.optionDoc or row.help


def optionTable(rows: Sequence[Setting] = OPTIONS) -> str:
    """
    @param rows: table rows.
    @return: the Markdown table of their options.
    """
    lines = ["| option | default | meaning |", "|--------|---------|---------|"]
    for row in rows:
        if row.option:
            name = f"--{row.option} {row.metavar}".strip()
            lines.append(f"| `{name}` | {_shownOption(row)} | {_cell(_meaning(row))} |")
    return "\n".join(lines)


def _allowed(row: Setting) -> str:
    """
    @return: the allowed cell of a session setting: its range and the
        settings it must not cross (L{ORDERED_PAIRS}).
    """
    text = row.check.allowed()
    for low, high in ORDERED_PAIRS:
        if row.name == high:
            text += f", \u2265 `{low}`"
        if row.name == low:
            text += f", \u2264 `{high}`"
    return text


def _shownSetting(row: Setting) -> str:
    """
    @return: the default cell of a session setting.
    """
    if row.roles:
        server, client = row.roles["server"], row.roles["client"]
        return f"`None`: {server:g} s for a `Server`'s sessions, {client:g} (off) for a `Client`'s"
    shown = f"`{row.default!r}`".replace("'", '"')
    return shown + (f" {row.shown}" if row.shown.startswith("(") else "")


def settingTable(rows: Sequence[Setting] = SESSION_SETTINGS) -> str:
    """
    @param rows: session rows.
    @return: the Markdown table of the session settings.
    """
    lines = ["| setting | default | allowed | meaning |", "|---------|---------|---------|---------|"]
    for row in rows:
        lines.append(f"| `{row.name}` | {_shownSetting(row)} | {_allowed(row)} | {_cell(row.doc or row.help)} |")
    return "\n".join(lines)


#: The generated parts of docs/options.md, by the name of their markers.
TABLES: dict[str, Callable[[], str]] = {"twistd": optionTable, "settings": settingTable}

_COMMAND = "python -m txgetty.tools.options --write docs/options.md"
_REGION = re.compile(r"(<!-- generated (\w+):[^>]*-->\n)(.*?)(\n<!-- end generated \2 -->)", re.S)


def render(text: str) -> str:
    """
    @param text: a page with generated regions (C{<!-- generated NAME: ...
        -->} ... C{<!-- end generated NAME -->}).
    @return: the page with each region's table made again from the table.
    @raise KeyError: a region names no table of L{TABLES}.
    """
    return _REGION.sub(lambda m: m.group(1) + TABLES[m.group(2)]() + m.group(4), text)


def regions(text: str) -> list[str]:
    """
    @param text: a page.
    @return: the names of its generated regions.
    """
    return [m.group(2) for m in _REGION.finditer(text)]


def markdown() -> str:
    """
    @return: every generated table, each with its markers, for pasting.
    """
    return "\n\n".join(
        f"<!-- generated {name}: {_COMMAND} -->\n{make()}\n<!-- end generated {name} -->"
        for name, make in TABLES.items()
    )


def main(argv: Sequence[str] | None = None) -> int:
    """
    C{python -m txgetty.tools.options}: C{--markdown} prints the tables,
    C{--write FILE} makes the file's generated regions again, C{--check
    FILE} says whether they are up to date.

    @param argv: the arguments (default: C{sys.argv[1:]}).
    @return: the exit code (1: out of date, 2: bad command line).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--markdown"]:
        print(markdown())
        return 0
    if len(args) == 2 and args[0] in ("--write", "--check"):
        with open(args[1], encoding="utf-8") as f:
            text = f.read()
        new = render(text)
        if args[0] == "--check":
            if new != text:
                print(f"{args[1]} is out of date: run {_COMMAND}", file=sys.stderr)
                return 1
            return 0
        with open(args[1], "w", encoding="utf-8") as f:
            f.write(new)
        return 0
    print("usage: python -m txgetty.tools.options --markdown | --write FILE | --check FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
