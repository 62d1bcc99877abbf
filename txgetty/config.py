"""
The settings table: one row (L{Setting}) per setting, with its default, its
check (a bad value is a L{ConfigError} naming the setting), its help and its
command-line option; and L{SessionConfig}, whose fields are the session rows
(tests/unit/test_config.py checks them field by field).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Mapping, Protocol, Union

from .errors import ConfigError

#: getty's demo port for the hello service.
DEFAULT_PORT = 8090

#: Who made a session: a L{Server <txgetty.Server>} ("server": its
#: port may face the internet) or anything else ("client": a Client, a
#: session made by hand), for the settings of L{ROLE_DEFAULTS}.
ROLES = ("server", "client")

#: Where a setting applies (L{Setting.scope}): every session
#: (L{SessionConfig}), each listener of a server (a C{Server} or
#: C{RpcServer} argument, or a key of one listener's description), or the
#: whole process (C{twistd txgetty} only).
SCOPES = ("session", "listener", "process")

HANDLER_ERROR_POLICIES = ("close", "continue")


def _number(name: str, value: Any, *, positive: bool, upper: float | None = None) -> float:
    """
    Check a number of seconds.

    @param name: the setting's name, for the message.
    @param value: the value to check.
    @param positive: whether 0 is refused.
    @param upper: an optional inclusive upper bound.
    @return: C{value} as a float.
    @raise ConfigError: the value is not a number or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if value != value or value < 0 or (positive and value == 0):
        need = "greater than 0" if positive else "0 or more"
        raise ConfigError(f"{name} must be {need}, got {value!r}")
    if upper is not None and value > upper:
        raise ConfigError(f"{name} must be at most {upper}, got {value!r}")
    return float(value)


def checkSeconds(name: str, positive: bool) -> Callable[[Any], float]:
    """
    @param name: the setting's name, for the message.
    @param positive: whether 0 is refused (otherwise 0 means "off").
    @return: a checker for a number of seconds.
    """

    def check(value: Any) -> float:
        return _number(name, value, positive=positive)

    return check


def checkCount(name: str, positive: bool = True, noun: str = "integer") -> Callable[[Any], int]:
    """
    @param name: the setting's name, for the message.
    @param positive: whether 0 is refused.
    @param noun: what the value is, for the message.
    @return: a checker for a whole number of bytes or packets.
    """

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if positive else 0):
            need = f"a positive {noun}" if positive else f"an {noun}, 0 or more"
            raise ConfigError(f"{name} must be {need}, got {value!r}")
        return value

    return check


def checkBool(name: str) -> Callable[[Any], bool]:
    """
    @param name: the setting's name, for the message.
    @return: a checker that accepts only C{True} and C{False}.
    """

    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be True or False, got {value!r}")
        return value

    return check


class Number:
    """
    The check of a numeric setting: its kind, unit and range.  It makes the
    setting's checker (L{ConfigError} naming the setting), the command-line
    coercer (an error naming the option) and the "allowed" text of the
    docs, so that the range is written once.

    @ivar kind: C{int} (a whole number) or C{float} (stored as a float).
    @ivar unit: what it counts (C{"seconds"}, C{"bytes"}, ...).
    @ivar positive: 0 is refused (otherwise 0 or more).
    @ivar upper: an inclusive upper bound, or C{None}.
    @ivar noun: for a whole number, what its L{ConfigError} calls it.
    @ivar minimum: for a command-line option only, a smallest value above
        1, or C{None}.
    """

    def __init__(self, kind: type, unit: str, positive: bool = False, upper: float | None = None,
                 noun: str = "integer", minimum: float | None = None) -> None:
        self.kind, self.unit, self.positive, self.upper, self.noun = kind, unit, positive, upper, noun
        self.minimum = minimum

    def checker(self, name: str) -> Callable[[Any], Any]:
        """
        @param name: the setting's name, for messages.
        @return: the function that checks a value given in Python.
        """
        if self.kind is int:
            return checkCount(name, self.positive, self.noun)
        if self.upper is None:
            return checkSeconds(name, self.positive)
        upper = self.upper
        return lambda value: _number(name, value, positive=self.positive, upper=upper)

    def what(self) -> str:
        """
        @return: what the option takes, e.g. C{"a number of seconds, more
            than 0"}, for messages and help.
        """
        whole = self.kind is int
        above = ("1 or more" if whole else "more than 0") if self.positive else "0 or more"
        if self.minimum is not None:
            above = f"{self.minimum:g} or more"
        below = f", at most {self.upper:g}" if self.upper is not None else ""
        return f"{'a whole number' if whole else 'a number'} of {self.unit}, {above}{below}"

    def parse(self, text: str) -> Any:
        """
        Read a value given as text on a command line.

        @param text: the text.
        @return: the value.
        @raise ValueError: it is not such a number, or out of range.
        """
        value = self.kind(text)
        if value != value or value in (float("inf"), float("-inf")) or value < 0 or \
                (self.positive and value == 0) or (self.upper is not None and value > self.upper) or \
                (self.minimum is not None and value < self.minimum):
            raise ValueError(f"{text!r} is out of range")
        return value

    def allowed(self) -> str:
        """
        @return: the range for the docs, e.g. C{"int \u2265 1"}, C{"> 0"}.
        """
        if self.kind is int:
            text = f"int \u2265 {1 if self.positive else 0}"
        else:
            text = "> 0" if self.positive else "\u2265 0"
        return text + (f", \u2264 {self.upper:g}" if self.upper is not None else "")


class Flag:
    """
    The check of a boolean setting (C{True} or C{False}); on the command line
    a flag turns the default around.
    """

    kind = bool

    def checker(self, name: str) -> Callable[[Any], bool]:
        """
        @param name: the setting's name, for messages.
        @return: the function that checks a value given in Python.
        """
        return checkBool(name)

    def allowed(self) -> str:
        """
        @return: the range for the docs.
        """
        return "bool"


class Choice:
    """
    The check of a setting that takes one of a few words.

    @ivar choices: the words.
    """

    kind = str

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def checker(self, name: str) -> Callable[[Any], str]:
        """
        @param name: the setting's name, for messages.
        @return: the function that checks a value given in Python.
        """

        def check(value: Any) -> str:
            if value not in self.choices:
                raise ConfigError(f"{name} must be one of {', '.join(self.choices)}, got {value!r}")
            return value

        return check

    def allowed(self) -> str:
        """
        @return: the range for the docs.
        """
        return ", ".join(f'`"{choice}"`' for choice in self.choices)


class Text:
    """
    A setting given as text (a file, a spec, a C{MODULE:NAME}), checked by
    whoever uses it; C{many} for an option that may be repeated.

    @ivar many: the option may be given several times (a list).
    """

    kind = str

    def __init__(self, many: bool = False) -> None:
        self.many = many

    def allowed(self) -> str:
        """
        @return: the range for the docs.
        """
        return "text"


class CustomCheck(Protocol):
    """
    The check of an option of its own kind (e.g. C{--workers}): what the
    table needs of it.
    """

    kind: type

    def checker(self, name: str) -> Callable[[Any], Any]:
        """
        @param name: the setting's name, for messages.
        @return: the function that checks a value given in Python.
        """

    def parse(self, text: str) -> Any:
        """
        @param text: the option's text.
        @return: the value.
        @raise ValueError: the text is wrong.
        """

    def what(self) -> str:
        """
        @return: what the option takes, for messages and help.
        """

    def allowed(self) -> str:
        """
        @return: the range for the docs.
        """


Check = Union[Number, Flag, Choice, Text, CustomCheck]


@dataclass(frozen=True)
class Setting:
    """
    One row of the settings table: everything about one setting, written
    once.  L{SessionConfig}, the twistd options (C{txgetty.tools.options}),
    the C{txgetty} command's options that mirror them and the tables of
    docs/options.md are made from, or tested against, these rows.

    @ivar name: the setting's name: the L{SessionConfig} field and session
        property (scope C{"session"}), the C{Server} argument and
        description key (C{"listener"}), or the name of an option's value
        (C{"process"}).
    @ivar default: its default (for a setting of L{ROLE_DEFAULTS}: C{None}
        in a config; L{roles} gives each role's value).
    @ivar check: its L{Number}, L{Flag}, L{Choice} or L{Text}.
    @ivar help: the one-line help of its command-line option.
    @ivar scope: one of L{SCOPES}.
    @ivar option: its command-line option without the dashes (for a
        L{Flag}: the flag that turns the default around), or C{None}.
    @ivar metavar: what the option's value is called in docs (C{SECONDS}).
    @ivar doc: its meaning in docs/options.md's settings table (Markdown);
        defaults to L{help}.
    @ivar optionDoc: its meaning in docs/options.md's option table
        (Markdown); for a session setting, what follows "C{`name`} of every
        session".
    @ivar shown: the default column of the option table when the default
        alone does not say it (Markdown), or C{""}.
    @ivar roles: for the settings whose default depends on who makes the
        session, each role's value.
    """

    name: str
    default: Any
    check: Check
    help: str
    scope: str = "session"
    option: str | None = None
    metavar: str = ""
    doc: str = ""
    optionDoc: str = ""
    shown: str = ""
    roles: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def optionDefault(self) -> Any:
        """
        @return: the default of its command-line option (a server's value,
            for a setting of L{ROLE_DEFAULTS}).
        """
        return self.roles["server"] if self.roles else self.default

    def checker(self) -> Callable[[Any], Any]:
        """
        @return: the function that checks a value given in Python, raising
            L{ConfigError} naming the setting.
        """
        return self.check.checker(self.name)  # type: ignore[union-attr]


_SECONDS = Number(float, "seconds")
_POSITIVE_SECONDS = Number(float, "seconds", positive=True)

#: The settings of every session, in the order of L{SessionConfig}'s fields.
SESSION_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "maxMsgLen", 1024 * 1024, Number(int, "bytes", positive=True, noun="number of bytes"),
        "largest packet accepted, in bytes; larger declared lengths are refused at the header",
        option="max-msg-len", metavar="BYTES", shown="(1 MiB)",
        doc="largest packet accepted, in bytes; a longer declared length is refused as soon as the header is read "
            "(`PacketTooLargeError` \u2192 `onError`, close). It limits reading only, as in getty.",
    ),
    Setting(
        "cronPeriod", 60.0, _POSITIVE_SECONDS, "seconds between onCron calls of a session",
        option="cron-period", metavar="SECONDS", doc="seconds between two `onCron` calls",
    ),
    Setting(
        "waitTime", 3.0, _SECONDS, "seconds a closing session may flush its output before it is aborted",
        option="wait-time", metavar="SECONDS",
        doc="seconds `close()` lets pending output drain before it aborts the connection (0: abort at once)",
    ),
    Setting(
        # 5 cron periods, so a client that sends a heartbeat on each onCron
        # (getty's way) survives 4 lost ones; RPC clients send one every 15 s
        # (the RPC server's own idle limit is 300 s too).  A client must not
        # close an idle pool that its server may keep silent.
        "readIdleTimeout", None, _SECONDS, "close sessions silent for this many seconds (0: off)",
        option="read-idle-timeout", metavar="SECONDS", optionDoc=" (0: off)",
        roles={"server": 300.0, "client": 0.0},
        doc="seconds without any input before the session is closed with `ReadIdleTimeoutError` (0: off); on "
            "WebSocket a pong counts as input; UDP peers get 60 s unless the config sets a value (see "
            "[transports.md](transports.md#udp))",
    ),
    Setting(
        "packetTimeout", 10.0, _SECONDS,
        "close sessions whose started packet is not complete after this many seconds (0: off)",
        option="packet-timeout", metavar="SECONDS", optionDoc=" (0: off)",
        doc="seconds a packet may take from its first byte to its last before the session is closed with "
            "`PacketTimeoutError` (0: off)",
    ),
    Setting(
        "openTimeout", 10.0, _SECONDS,
        "drop connections not open (TLS handshake, onOpen) after this many seconds (0: off)",
        option="open-timeout", metavar="SECONDS",
        optionDoc=" (0: off); on a `ws://` listener it also bounds each connection's HTTP stage",
        doc="seconds a connection may take to open (TLS handshake and `onOpen`) before it is dropped with "
            "`OpenTimeoutError` (0: off); its timer starts when the new-session callback returned, so the "
            "callback may set it. On a `ws://`/`wss://` listener the server's value also bounds each "
            "connection's whole HTTP stage, from accept to the finished upgrade "
            "([transports.md](transports.md#websocket))",
    ),
    Setting(
        # As nginx's client_header_timeout.
        "firstPacketTimeout", None, _SECONDS,
        "close stream connections that sent no complete packet this many seconds after connecting (0: off)",
        option="first-packet-timeout", metavar="SECONDS", optionDoc=" (0: off)",
        roles={"server": 60.0, "client": 0.0},
        doc="seconds from accepting a stream connection (TCP, TLS, UNIX) until its first complete packet, "
            "before the session is closed with `FirstPacketTimeoutError` (0: off); it counts the TLS handshake "
            "and `onOpen` too; none on WebSocket (the upgrade came first) and UDP",
    ),
    Setting(
        # As nginx's send_timeout.
        "writeTimeout", 60.0, _SECONDS,
        "close sessions whose peer took none of their waiting output for this many seconds (0: off)",
        option="write-timeout", metavar="SECONDS", optionDoc=" (0: off)",
        doc="seconds the session may stay unwritable (more than `writeHighMark` bytes waiting) while the peer "
            "takes none of them, before it is closed with `WriteTimeoutError` (0: off); a peer that reads, "
            "however slowly, resets it",
    ),
    Setting(
        "tcpNoDelay", True, Flag(), "leave Nagle's algorithm on (tcpNoDelay=False)",
        option="no-tcp-nodelay", shown="off (no-delay on)",
        optionDoc="leave Nagle's algorithm on: `tcpNoDelay = False`",
        doc="disable Nagle's algorithm (TCP and TLS-over-TCP connections; ignored on UNIX sockets and other "
            "transports)",
    ),
    Setting(
        "tcpKeepAlive", True, Flag(), "do not send TCP keepalive probes (tcpKeepAlive=False)",
        option="no-tcp-keepalive", shown="off (keepalive on)",
        optionDoc="no TCP keepalive probes: `tcpKeepAlive = False`", doc="enable TCP keepalive probes",
    ),
    Setting(
        # The kernel's limit of TCP_KEEPIDLE is 32767 seconds.
        "keepAlivePeriod", 180.0, Number(float, "seconds", positive=True, upper=32767),
        "idle seconds before the first TCP keepalive probe", option="keepalive-period", metavar="SECONDS",
        doc="idle seconds before the first keepalive probe (Linux `TCP_KEEPIDLE`, whole seconds; the probe "
            "interval is `min(period, 75)`); only where the platform has `TCP_KEEPIDLE`",
    ),
    Setting(
        "handlerErrorPolicy", "close", Choice(HANDLER_ERROR_POLICIES),
        "close or continue: what an exception in onMessage/onCron does after onError",
        option="handler-error-policy", metavar="POLICY", optionDoc=": `close` or `continue`",
        doc="what happens after an exception from `onMessage` or `onCron` reached `onError`: close the "
            "session, or keep it open",
    ),
    Setting(
        # netty's WriteBufferWaterMark.
        "writeHighMark", 64 * 1024, Number(int, "bytes", positive=True),
        "bytes waiting to be written above which a session is unwritable",
        option="write-high-mark", metavar="BYTES",
        doc="bytes waiting to be written above which the session becomes unwritable (`isWritable()` is "
            "`False`, `onWritabilityChanged` runs)",
    ),
    Setting(
        "writeLowMark", 32 * 1024, Number(int, "bytes"), "bytes waiting below which it is writable again",
        option="write-low-mark", metavar="BYTES",
    ),
    Setting(
        "maxPendingBytes", 16 * 1024 * 1024, Number(int, "bytes", positive=True),
        "bytes waiting above which a session is closed (its peer does not read)",
        option="max-pending-bytes", metavar="BYTES", shown="(16 MiB)",
        doc="bytes waiting above which the session is closed with `OutboundOverflowError` (a peer that never "
            "reads)",
    ),
    Setting(
        "pauseReadingWhenUnwritable", True, Flag(),
        "keep reading from peers whose replies pile up (pauseReadingWhenUnwritable=False)",
        option="no-pause-reading-when-unwritable", shown="off (pausing on)",
        optionDoc="keep reading from peers whose replies pile up: `pauseReadingWhenUnwritable = False`",
        doc="stop reading from the peer while the session is unwritable",
    ),
    Setting(
        "backlogHighMark", 256, Number(int, "packets", positive=True),
        "packets waiting for the task pool above which reading pauses",
        option="backlog-high-mark", metavar="PACKETS",
        doc="packets waiting for the task pool above which reading from the peer pauses",
    ),
    Setting(
        "backlogLowMark", 64, Number(int, "packets"), "packets waiting for the task pool below which reading resumes",
        option="backlog-low-mark", metavar="PACKETS", doc="packets waiting below which reading resumes",
    ),
    Setting(
        # See benchmarks/fairness.py.
        "maxPacketsPerTurn", 256, Number(int, "packets"),
        "packets one session hands to onMessage per reactor turn before the others get theirs (0: no bound)",
        option="max-packets-per-turn", metavar="PACKETS", optionDoc=" (0: no bound)",
        doc="packets one read may hand to `onMessage` in one reactor turn; the rest wait for the next turns "
            "(reading paused meanwhile), in order, so that other sessions get their turn (0: no bound); streams "
            "only, without a task pool ([flow-control.md](flow-control.md#fairness-between-sessions))",
    ),
)

#: The settings of each listener of a server (C{Server} and C{RpcServer}
#: arguments, keys of one listener's description).
LISTENER_SETTINGS: tuple[Setting, ...] = (
    Setting(
        # UDP's maxPeers too.
        "maxSessions", 10_000, Number(int, "connections"),
        "connections each --listen and --rpc-listen listener holds at most; more are closed at once (0: no cap)",
        scope="listener", option="max-sessions", metavar="CONNECTIONS",
        optionDoc="the most connections each `--listen` and `--rpc-listen` listener holds (UDP: its "
                  "`maxPeers`); more are closed at once, counted and logged once per 10 s; 0: no cap; a "
                  "listener's own `:maxSessions=N` (`?maxSessions=N` for `ws://`) wins",
    ),
    Setting(
        # The kernel clamps it to its maximum (net.core.somaxconn on Linux,
        # 4096 since Linux 5.4), as Go and netty use.
        "backlog", 65535, Number(int, "connections", positive=True),
        "listen backlog of each --listen and --rpc-listen listener (the kernel clamps it to its maximum, "
        "somaxconn)",
        scope="listener", option="backlog", metavar="CONNECTIONS",
        optionDoc="the listen backlog of each `--listen` and `--rpc-listen` stream and WebSocket listener; the "
                  "kernel clamps it to its maximum (`net.core.somaxconn`, 4096 on Linux 5.4 and later); a "
                  "listener's own `:backlog=N` (`?backlog=N`) wins",
    ),
)

#: The process settings declared here, beside the defaults of the classes
#: that take them (the others are in C{txgetty.tools.options}).
WHEEL_TICK = Setting(
    "wheelTick", 0.1, _POSITIVE_SECONDS, "resolution of the shared cron/timeout wheel, seconds",
    scope="process", option="wheel-tick", metavar="SECONDS",
    optionDoc="resolution of the timer wheel that drives `onCron` and the timeouts; must be > 0",
)

_BY_NAME = {row.name: row for row in SESSION_SETTINGS + LISTENER_SETTINGS + (WHEEL_TICK,)}


def setting(name: str) -> Setting:
    """
    @param name: a setting's name.
    @return: its row of the table.
    @raise KeyError: there is no such setting here.
    """
    return _BY_NAME[name]


DEFAULT_MAX_MSG_LEN: int = setting("maxMsgLen").default
DEFAULT_CRON_PERIOD: float = setting("cronPeriod").default
DEFAULT_WAIT_TIME: float = setting("waitTime").default
DEFAULT_PACKET_TIMEOUT: float = setting("packetTimeout").default
DEFAULT_OPEN_TIMEOUT: float = setting("openTimeout").default
DEFAULT_KEEPALIVE_PERIOD: float = setting("keepAlivePeriod").default
DEFAULT_WHEEL_TICK: float = WHEEL_TICK.default
DEFAULT_WRITE_HIGH_MARK: int = setting("writeHighMark").default
DEFAULT_WRITE_LOW_MARK: int = setting("writeLowMark").default
DEFAULT_MAX_PENDING_BYTES: int = setting("maxPendingBytes").default
DEFAULT_BACKLOG_HIGH_MARK: int = setting("backlogHighMark").default
DEFAULT_BACKLOG_LOW_MARK: int = setting("backlogLowMark").default
#: A server session's readIdleTimeout (L{ROLE_DEFAULTS}).
DEFAULT_READ_IDLE_TIMEOUT: float = setting("readIdleTimeout").optionDefault
#: A server session's firstPacketTimeout (L{ROLE_DEFAULTS}).
DEFAULT_FIRST_PACKET_TIMEOUT: float = setting("firstPacketTimeout").optionDefault
DEFAULT_WRITE_TIMEOUT: float = setting("writeTimeout").default
DEFAULT_MAX_PACKETS_PER_TURN: int = setting("maxPacketsPerTurn").default
#: Sessions (connections) one listener holds at most; UDP's maxPeers too.
DEFAULT_MAX_SESSIONS: int = setting("maxSessions").default
#: The listen backlog asked for (the kernel clamps it to its maximum).
DEFAULT_LISTEN_BACKLOG: int = setting("backlog").default

#: The settings whose default depends on the role: a L{SessionConfig} holds
#: C{None} for them unless given, and each session takes its role's value.
ROLE_DEFAULTS: dict[str, dict[str, float]] = {
    row.name: dict(row.roles) for row in SESSION_SETTINGS if row.roles
}

#: The check of each session setting, by name.
CHECKS: dict[str, Callable[[Any], Any]] = {row.name: row.checker() for row in SESSION_SETTINGS}

checkMaxMsgLen = CHECKS["maxMsgLen"]
checkCronPeriod = CHECKS["cronPeriod"]
checkWaitTime = CHECKS["waitTime"]
checkReadIdleTimeout = CHECKS["readIdleTimeout"]
checkPacketTimeout = CHECKS["packetTimeout"]
checkOpenTimeout = CHECKS["openTimeout"]
checkFirstPacketTimeout = CHECKS["firstPacketTimeout"]
checkWriteTimeout = CHECKS["writeTimeout"]
checkKeepAlivePeriod = CHECKS["keepAlivePeriod"]
checkHandlerErrorPolicy = CHECKS["handlerErrorPolicy"]

#: (lower, upper) pairs of settings where lower <= upper must hold.
ORDERED_PAIRS = (
    ("writeLowMark", "writeHighMark"),
    ("writeHighMark", "maxPendingBytes"),
    ("backlogLowMark", "backlogHighMark"),
)


def checkOrder(name: str, value: Any, current: Callable[[str], Any]) -> None:
    """
    Check that a new value keeps every low mark at or below its high mark.

    @param name: the setting being changed.
    @param value: its new value.
    @param current: gives the current value of another setting.
    @raise ConfigError: the new value would cross its partner; the message
        says which one to change first.
    """
    for low, high in ORDERED_PAIRS:
        if name == low and value > current(high):
            raise ConfigError(f"{low} ({value!r}) must not exceed {high} ({current(high)!r}); raise {high} first")
        if name == high and value < current(low):
            raise ConfigError(f"{high} ({value!r}) must not be below {low} ({current(low)!r}); lower {low} first")


#: The settings of a listener (a C{Server} argument, or a key of one
#: listener's description): their checks.
LISTENER_CHECKS: dict[str, Callable[[Any], int]] = {row.name: row.checker() for row in LISTENER_SETTINGS}


def checkListenerSetting(name: str, value: Any, where: str = "") -> int:
    """
    Check a listener setting, also one given as text in a description.

    @param name: a key of L{LISTENER_CHECKS}.
    @param value: its value (a text is read as a whole number).
    @param where: the description it came from, for the message.
    @return: the value.
    @raise ConfigError: it is not a whole number in range.
    """
    suffix = f" (in {where!r})" if where else ""
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {value!r}{suffix}") from None
    try:
        return LISTENER_CHECKS[name](value)
    except ConfigError as e:
        raise ConfigError(f"{e}{suffix}") from None


@dataclass(frozen=True)
class SessionConfig:
    """
    The settings every new session starts with; a new-session callback can
    still change them per session.

    @ivar maxMsgLen: largest packet accepted, in bytes; a longer declared
        length is refused as soon as the header arrives.
    @ivar cronPeriod: seconds between two C{onCron} calls.
    @ivar waitTime: seconds C{close()} lets pending output drain before it
        aborts the connection (0: abort at once).
    @ivar readIdleTimeout: seconds without any input after which the session
        is closed with L{ReadIdleTimeoutError
        <txgetty.errors.ReadIdleTimeoutError>} (0: off); C{None}: 300 for a
        server's sessions, 0 for a client's (L{ROLE_DEFAULTS}).
    @ivar packetTimeout: seconds a packet may take from its first byte to its
        last before the session is closed with L{PacketTimeoutError
        <txgetty.errors.PacketTimeoutError>} (0: off); it stops peers that
        trickle bytes.
    @ivar openTimeout: seconds a connection may take to open (TLS handshake
        and C{onOpen}) before it is dropped with L{OpenTimeoutError
        <txgetty.errors.OpenTimeoutError>} (0: off); on a WebSocket listener
        it bounds the whole HTTP stage, from connect to the upgrade.
    @ivar firstPacketTimeout: seconds from connecting until the peer's first
        complete packet on a stream (TCP, TLS, UNIX), before the session is
        closed with L{FirstPacketTimeoutError
        <txgetty.errors.FirstPacketTimeoutError>} (0: off); C{None}: 60 for
        a server's sessions, 0 for a client's (L{ROLE_DEFAULTS}).
    @ivar writeTimeout: seconds the session may stay unwritable with the
        peer taking none of the bytes waiting, before it is closed with
        L{WriteTimeoutError <txgetty.errors.WriteTimeoutError>} (0: off).
    @ivar tcpNoDelay: disable Nagle's algorithm on TCP connections.
    @ivar tcpKeepAlive: enable TCP keepalive probes.
    @ivar keepAlivePeriod: seconds of silence before the first keepalive
        probe (Linux C{TCP_KEEPIDLE}).
    @ivar handlerErrorPolicy: C{"close"} or C{"continue"}: what happens after
        C{onMessage} or C{onCron} raised and C{onError} saw it.
    @ivar writeHighMark: bytes waiting to be written above which the session
        becomes unwritable (C{isWritable()} is C{False}; netty's
        WriteBufferWaterMark).
    @ivar writeLowMark: bytes waiting below which it is writable again.
    @ivar maxPendingBytes: bytes waiting above which the session is closed
        with L{OutboundOverflowError <txgetty.errors.OutboundOverflowError>}
        (a peer that never reads cannot grow the server's memory).
    @ivar pauseReadingWhenUnwritable: stop reading from the peer while the
        session is unwritable (a peer that does not read its replies stops
        being read).
    @ivar backlogHighMark: packets waiting for a task pool above which
        reading from the peer pauses.
    @ivar backlogLowMark: packets waiting below which reading resumes.
    @ivar maxPacketsPerTurn: packets a read hands to C{onMessage} in one
        reactor turn; the rest wait for the next turns, reading paused, so
        one peer cannot hold the reactor thread (0: no bound).
    """

    maxMsgLen: int = DEFAULT_MAX_MSG_LEN
    cronPeriod: float = DEFAULT_CRON_PERIOD
    waitTime: float = DEFAULT_WAIT_TIME
    readIdleTimeout: float | None = None
    packetTimeout: float = DEFAULT_PACKET_TIMEOUT
    openTimeout: float = DEFAULT_OPEN_TIMEOUT
    firstPacketTimeout: float | None = None
    writeTimeout: float = DEFAULT_WRITE_TIMEOUT
    tcpNoDelay: bool = True
    tcpKeepAlive: bool = True
    keepAlivePeriod: float = DEFAULT_KEEPALIVE_PERIOD
    handlerErrorPolicy: str = "close"
    writeHighMark: int = DEFAULT_WRITE_HIGH_MARK
    writeLowMark: int = DEFAULT_WRITE_LOW_MARK
    maxPendingBytes: int = DEFAULT_MAX_PENDING_BYTES
    pauseReadingWhenUnwritable: bool = True
    backlogHighMark: int = DEFAULT_BACKLOG_HIGH_MARK
    backlogLowMark: int = DEFAULT_BACKLOG_LOW_MARK
    maxPacketsPerTurn: int = DEFAULT_MAX_PACKETS_PER_TURN

    def __post_init__(self) -> None:
        """
        Check every field, and that low marks do not exceed high marks.

        @raise ConfigError: a field has a value that cannot work.
        """
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None or f.name not in ROLE_DEFAULTS:
                object.__setattr__(self, f.name, CHECKS[f.name](value))
        for low, high in ORDERED_PAIRS:
            if getattr(self, low) > getattr(self, high):
                raise ConfigError(
                    f"{low} ({getattr(self, low)!r}) must not exceed {high} ({getattr(self, high)!r})"
                )

    def forRole(self, role: str) -> SessionConfig:
        """
        @param role: one of L{ROLES}.
        @return: this config with the role's value for each setting left at
            C{None} (L{ROLE_DEFAULTS}).
        @raise ConfigError: the role is unknown.
        """
        if role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        unset: dict[str, Any] = {name: byRole[role] for name, byRole in ROLE_DEFAULTS.items() if getattr(self, name) is None}
        return replace(self, **unset) if unset else self
