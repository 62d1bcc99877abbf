"""
C{twistd txgetty} / C{twist txgetty}: serve the built-in echo service, or the
user's own new-session callback, on any number of endpoints.
"""

from __future__ import annotations

import errno
import importlib
import resource
import re
import os
import shutil
import sys
from typing import Any, Callable

from twisted.application.service import IService, MultiService, Service
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python import usage

from ..codec import codecFromString
from .registry import checkRegistry, registryService
from ..config import LISTENER_SETTINGS, SESSION_SETTINGS, SessionConfig
from ..transports.endpoints import isTLSDescription
from ..server.ports import parseListeners
from ..errors import ConfigError
from ..handlers import EchoListener
from ..server import Server
from ..rpc.builtin import registerBuiltins
from ..rpc.errors import FrameError, RegistrationError
from ..rpc.serializers import compressor
from ..rpc.services import ServiceRegistry
from ..rpc.server import RpcServer
from ..taskpool import TaskPool
from ..transports.tls import TLSServerSettings
from .tapworkers import adoptedListeners, servesRpc, supervisorService
from . import options as table
from .options import DEFAULT_LISTEN, DEFAULT_RPC_LISTEN, _NamedCoercer

__all__ = ["DEFAULT_LISTEN", "DEFAULT_RPC_LISTEN", "Options", "makeService", "_NamedCoercer"]


def _importObject(moduleName: str, attr: str, option: str, spec: str) -> Any:
    """
    @param moduleName: a module to import (the current directory is
        searched too, as C{python -m} does).
    @param attr: a (dotted) attribute of it.
    @param option: the option's name, for messages.
    @param spec: the whole text given, for messages.
    @return: the object.
    @raise usage.UsageError: the import or the lookup failed.
    """
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(moduleName)
    except Exception as e:
        raise usage.UsageError(f"{option} {spec}: cannot import {moduleName!r}: {e!r}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise usage.UsageError(f"{option} {spec}: {moduleName!r} has no attribute {attr!r}") from None
    return obj


def loadCallable(spec: str, option: str) -> Callable[..., Any]:
    """
    Import C{MODULE:NAME} (C{NAME} may be dotted) and check it is callable.

    @param spec: the text given on the command line.
    @param option: the option's name, for messages.
    @return: the object.
    @raise usage.UsageError: with a message saying what is wrong.
    """
    moduleName, sep, attr = spec.partition(":")
    if not sep or not moduleName or not attr:
        raise usage.UsageError(f"{option} takes MODULE:CALLABLE (e.g. myapp.chat:newSession), got {spec!r}")
    obj = _importObject(moduleName, attr, option, spec)
    if not callable(obj):
        raise usage.UsageError(f"{option} {spec}: {obj!r} is not callable")
    return obj


def loadService(spec: str) -> tuple[str | None, Any]:
    """
    Load a C{--service [NAME=]MODULE:OBJECT}.

    @param spec: the text given.
    @return: the name given (or C{None}) and the service object (a class is
        instantiated without arguments).
    @raise usage.UsageError: it cannot be loaded or instantiated.
    """
    name, eq, target = spec.partition("=")
    if not eq:
        name, target = "", spec
    moduleName, sep, attr = target.partition(":")
    if not sep or not moduleName or not attr:
        raise usage.UsageError(f"--service takes [NAME=]MODULE:OBJECT (e.g. myapp.calc:Calc), got {spec!r}")
    return name or None, _loadInstance(moduleName, attr, "--service", spec)


def loadHook(spec: str) -> Any:
    """
    Load an C{--rpc-hook MODULE:OBJECT}.

    @param spec: the text given.
    @return: the hook (a class is instantiated without arguments).
    @raise usage.UsageError: it cannot be loaded or instantiated.
    """
    moduleName, sep, attr = spec.partition(":")
    if not sep or not moduleName or not attr or "=" in moduleName:
        raise usage.UsageError(f"--rpc-hook takes MODULE:OBJECT (e.g. myapp.metrics:Metrics), got {spec!r}")
    return _loadInstance(moduleName, attr, "--rpc-hook", spec)


def _loadInstance(moduleName: str, attr: str, option: str, spec: str) -> Any:
    """
    Import an object for an option; a class is instantiated without
    arguments.

    @param moduleName: the module.
    @param attr: the (dotted) name in it.
    @param option: the option, for messages.
    @param spec: the text given, for messages.
    @return: the object or the new instance.
    @raise usage.UsageError: it cannot be imported or instantiated.
    """
    obj: Any = _importObject(moduleName, attr, option, spec)
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as e:
            raise usage.UsageError(f"{option} {spec}: cannot instantiate {attr} without arguments: {e!r}") from None
    return obj


def echoService(codec: Any) -> Callable[[Any], None]:
    """
    The built-in demo: every packet is written back.

    @param codec: the codec of every session.
    @return: a new-session callback.
    """
    listener = EchoListener()

    def newSession(session: Any) -> None:
        session.codec = codec
        session.listener = listener

    return newSession


def appService(codec: Any, app: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """
    Wrap the user's new-session callback so that sessions start with the
    C{--codec} codec (the callback may replace it).

    @param codec: the default codec.
    @param app: the user's callback.
    @return: a new-session callback.
    """

    def newSession(session: Any) -> Any:
        session.codec = codec
        return app(session)

    return newSession


class Options(usage.Options):
    """
    Command line of C{twistd txgetty}.  Its options, flags, repeatable
    options (C{opt_NAME} methods), coercers and the keywords they give to
    L{SessionConfig}, L{Server} and L{RpcServer} come from the rows of
    L{txgetty.tools.options.OPTIONS}; each coercer's refusal names the
    option.
    """

    synopsis = "[--listen ENDPOINT]... [--codec SPEC] [--app MODULE:CALLABLE] [options]"
    longdesc = (
        "Serve getty-style packet sessions and RPC services. With no options: an echo service "
        f"in getty's hello framing (4-byte little-endian length + payload) on {DEFAULT_LISTEN}, "
        f"and the RPC demo services Echo, Ping and Status on {DEFAULT_RPC_LISTEN} (served only while "
        "no --app, --service or TLS listener is given, or with --rpc-demo). "
        "ENDPOINT is a Twisted endpoint string (tcp:PORT[:interface=ADDR], tcp6:..., "
        "unix:PATH), tls:PORT[:interface=ADDR] (alias ssl:), which uses the --tls-* files "
        "or its own key=FILE:cert=FILE:chain=FILE:clientCA=FILE, udp:PORT[:interface=ADDR], "
        "ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (the --tls-* files); one server can "
        "listen on all of them at once. Every bound address is logged."
    )
    optFlags = table.flags()
    optParameters = table.parameters()

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse, keeping the arguments (in C{argv}) for the workers, which
        parse them again.

        @param options: the arguments (default: C{sys.argv[1:]}).
        """
        self.argv = list(sys.argv[1:] if options is None else options)
        super().parseOptions(options)

    def __init__(self) -> None:
        """
        Start with no listener and no user service; L{postOptions} adds the
        defaults.
        """
        super().__init__()
        table.startLists(self)

    def postOptions(self) -> None:
        """
        Check everything now, so that mistakes stop twistd with a clear
        message before it starts.

        @raise usage.UsageError: a value is wrong.
        """
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        if self["metrics"] is not None:
            _checkMetricsExtra()
        try:
            self["config"] = SessionConfig(**table.keywords(self, SESSION_SETTINGS))
            self["codecObject"] = codecFromString(self["codec"])
        except ConfigError as e:
            raise usage.UsageError(_optionNames(str(e))) from None
        self["tls"] = self._tlsSettings()
        try:
            # The reactor is only stored by endpoint parsers: check the text
            # (and TLS files) now, listen later on the real one.
            parseListeners(None, self["listen"], self["tls"], **table.keywords(self, LISTENER_SETTINGS))
        except ConfigError as e:
            raise usage.UsageError(f"--listen: {e}") from None
        app = self["app"]
        self["newSession"] = appService(self["codecObject"], loadCallable(app, "--app")) if app else None
        self._rpcOptions()

    def _rpcOptions(self) -> None:
        """
        Check the RPC listeners and load the --service objects.

        @raise usage.UsageError: a listener or service is wrong.
        """
        self["rpc-listen-given"] = bool(self["rpc-listen"])
        if not self["rpc-listen"]:
            self["rpc-listen"] = [DEFAULT_RPC_LISTEN]
        self["demo-off-by"] = None if self["rpc-demo"] else self._ownApplication()
        self["demo"] = self["demo-off-by"] is None
        registry = ServiceRegistry()
        if self["demo"]:
            registerBuiltins(registry)
        services = []
        if not self["no-rpc"]:
            try:
                parseListeners(None, self["rpc-listen"], self["tls"], **table.keywords(self, LISTENER_SETTINGS))
            except ConfigError as e:
                raise usage.UsageError(f"--rpc-listen: {e}") from None
        try:
            for spec in self["service"]:
                name, obj = loadService(spec)
                registry.register(obj, name)
                services.append((name, obj))
            compressor(self["rpc-compressor"])
        except (ConfigError, RegistrationError, FrameError) as e:
            raise usage.UsageError(str(e)) from None
        self["services"] = services
        # Every RpcServer also serves Health (txgetty.rpc.builtin).
        self["rpc-service-names"] = sorted({*registry.names(), "Health"})
        self["hooks"] = [loadHook(spec) for spec in self["rpc-hook"]]
        self["authCallable"] = loadCallable(self["rpc-auth"], "--rpc-auth") if self["rpc-auth"] else None
        if self["registry"] is not None:
            checkRegistry(self)

    def _ownApplication(self) -> str | None:
        """
        @return: what of the user's own is configured, which turns the demo
            RPC services off (C{"--app"}, C{"--service"}, C{"a TLS
            listener"}), or C{None} for nothing.
        """
        if self["app"]:
            return "--app"
        if self["service"]:
            return "--service"
        if any(isTLSDescription(d) or d.startswith("wss://") for d in self["listen"] + self["rpc-listen"]):
            return "a TLS listener"
        return None

    def _tlsSettings(self) -> TLSServerSettings | None:
        """
        @return: the C{--tls-*} files, or C{None}.
        @raise usage.UsageError: they are incomplete or unused.
        """
        key, cert = self["tls-key"], self["tls-cert"]
        extra = self["tls-chain"] or self["tls-client-ca"]
        if not (key or cert or extra):
            return None
        if not (key and cert):
            raise usage.UsageError("TLS needs both --tls-key and --tls-cert")
        listeners = self["listen"] + self["rpc-listen"]
        if not any(isTLSDescription(d) or d.startswith("wss://") for d in listeners):
            raise usage.UsageError(
                "--tls-key/--tls-cert are given but no listener uses TLS: add --listen tls:PORT, "
                "--listen wss://HOST:PORT/PATH or --rpc-listen tls:PORT"
            )
        return TLSServerSettings(key, cert, self["tls-chain"], self["tls-client-ca"])


table.addRepeatable(Options)

#: The option of each session setting, to name it in messages.
_SETTING_OPTIONS = table.optionNames()

_log = Logger()

#: The most the soft open-file limit is raised to when the hard one is unlimited.
MAX_OPEN_FILES = 1 << 20


def raiseOpenFileLimit(
    getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit,
    setrlimit: Callable[[int, tuple[int, int]], None] = resource.setrlimit,
) -> int:
    """
    Raise the process's soft limit on open files to its hard limit, so that
    C{twistd txgetty} can hold as many sessions as the system allows (the
    usual soft limit, 1024, stops a server near 1,000 connections).

    @param getrlimit: C{resource.getrlimit} (a fake in tests).
    @param setrlimit: C{resource.setrlimit} (a fake in tests).
    @return: the soft limit in force afterwards.
    """
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    target = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as e:
            _log.warn("txgetty: could not raise the open-file limit from {limit} to {target} ({reason}); "
                      "the server can hold about {limit} connections: raise it with ulimit -n",
                      limit=soft, target=target, reason=str(e), error=type(e).__name__)
            return soft
        _log.info("txgetty: raised the open-file limit from {limit} to {target}", limit=soft, target=target)
        return target
    return soft


def _optionNames(message: str) -> str:
    """
    @param message: a L{ConfigError} message naming session settings.
    @return: the message with the matching command-line options named too.
    """
    pattern = re.compile(r"\b(" + "|".join(_SETTING_OPTIONS) + r")\b")
    return pattern.sub(lambda m: f"{_SETTING_OPTIONS[m.group(1)]} ({m.group(1)})", message)


def _checkMetricsExtra() -> None:
    """
    @raise usage.UsageError: C{--metrics} without prometheus_client.
    """
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise usage.UsageError("--metrics needs prometheus_client, which is not installed: "
                               "pip install 'txgetty[metrics]'") from None


def _metricsService(options: Options, reactor: Any, top: MultiService) -> Any:
    """
    @return: the service of C{--metrics} (added first, so that it stops
        last and C{/readyz} says draining while the servers drain), or
        C{None} without the option.
    """
    if options["metrics"] is None:
        return None
    from ..metrics import MetricsService

    metrics = MetricsService(options["metrics"], reactor=reactor)
    metrics.setServiceParent(top)
    return metrics


def _registeredCheck(registration: Any, url: str) -> Callable[[], "str | None"]:
    """
    @param registration: the C{--registry} announcement.
    @param url: the registry, for the reason.
    @return: a readiness check: ready once every address is registered.
    """
    def check() -> str | None:
        return None if registration.registered else f"starting: not registered in {url} yet"

    return check


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    Build the services from the parsed options: the task pool(s), the
    packet server and (unless C{--no-rpc}, or there is no RPC service to
    serve) the RPC server with the C{--service} services and, unless the
    user's own configuration turns them off, the demo services.

    @param options: the parsed L{Options}.
    @param reactor: the reactor; the global one if C{None}.
    @return: a L{MultiService} that starts the pools first and stops them
        last.
    @raise usage.UsageError: an endpoint or TLS file is wrong.
    """
    newSession = options["newSession"] or echoService(options["codecObject"])
    raiseOpenFileLimit()
    parent = getattr(options, "parent", None)
    top = _Main(daemon=parent is not None and not parent.get("nodaemon", True))
    if options["workers"] > 1:
        return _supervisorMain(options, reactor, top)
    pool = None
    try:
        metrics = _metricsService(options, reactor, top)
    except ValueError as e:  # a bad endpoint string
        raise usage.UsageError(f"--metrics {options['metrics']}: {e}") from None
    if options["task-pool"]:
        pool = TaskPool(options["task-pool"], ordered=not options["task-pool-unordered"], reactor=reactor)
        pool.setServiceParent(top)
        if metrics is not None:
            metrics.watch(taskPools=[pool])
    try:
        server = Server(
            options["listen"], newSession, reactor=reactor, config=options["config"],
            tls=options["tls"], wheelTick=options["wheel-tick"], raiseSynchronously=True,
            taskPool=pool, **table.keywords(options, LISTENER_SETTINGS),
        )
        server.setServiceParent(top)
        top.listeners[server] = ("--listen", options["listen"])
        if metrics is not None:
            metrics.watch(servers=[server])
        if options["no-rpc"]:
            pass
        elif options["services"] or options["demo"]:
            rpc, rpcServer = _rpcServer(options, reactor, pool)
            rpc.setServiceParent(top)
            top.listeners[rpc] = ("--rpc-listen", options["rpc-listen"])
            if metrics is not None:
                metrics.watch(rpcServers=[rpcServer])
            if options["registry"] is not None:
                top.registration = registryService(
                    options, rpcServer.whenListening, lambda: list(rpcServer.registry.names()), reactor)
                top.registration.setServiceParent(top)
                if metrics is not None:
                    metrics.readiness.add(_registeredCheck(top.registration, options["registry"]))
        else:
            _noRpcServer(options)
    except ConfigError as e:
        raise usage.UsageError(str(e)) from None
    return top


def _supervisorMain(options: Options, reactor: Any, top: _Main) -> _Main:
    """
    C{--workers N}: the supervisor, with C{--registry} its registration and
    with C{--metrics} the metrics of the whole process tree (see
    L{txgetty.metrics.workers}; added first, so that it stops last).

    @param options: the parsed options (C{workers} > 1).
    @param reactor: the reactor.
    @param top: the services to add to.
    @return: C{top}.
    @raise usage.UsageError: C{--workers} or C{--metrics} is wrong.
    """
    directory = None
    if options["metrics"] is not None:
        from ..metrics.workers import makeMetricsDirectory

        directory = makeMetricsDirectory()
    try:
        supervisor = supervisorService(options, reactor, directory)
        metrics = _workersMetricsService(options, supervisor, directory, reactor)
    except (ConfigError, usage.UsageError) as e:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        if isinstance(e, usage.UsageError):
            raise
        raise usage.UsageError(f"--workers {options['workers']}: {e}") from None
    if metrics is not None:
        metrics.setServiceParent(top)
    supervisor.setServiceParent(top)
    top.listeners[supervisor] = ("--listen", options["listen"], "--rpc-listen", options["rpc-listen"])
    if options["registry"] is not None and servesRpc(options):
        top.registration = _supervisorRegistration(options, supervisor, reactor)
        top.registration.setServiceParent(top)
        if metrics is not None:
            metrics.readiness.add(_registeredCheck(top.registration, options["registry"]))
    return top


def _workersMetricsService(options: Options, supervisor: Any, directory: str | None, reactor: Any) -> Any:
    """
    @return: the supervisor's C{--metrics} service, or C{None} without C{--metrics}.
    @raise usage.UsageError: a bad C{--metrics} endpoint.
    """
    if directory is None:
        return None
    from ..metrics.workers import WorkersMetricsService

    try:
        return WorkersMetricsService(options["metrics"], supervisor, directory, reactor=reactor)
    except ValueError as e:
        raise usage.UsageError(f"--metrics {options['metrics']}: {e}") from None


def _supervisorRegistration(options: Options, supervisor: Any, reactor: Any) -> IService:
    """
    C{--registry} with C{--workers N}: the supervisor registers, once per
    RPC listener address (not per worker), when every worker is ready.

    @param options: the parsed options.
    @param supervisor: the L{WorkerSupervisor <txgetty.workers.WorkerSupervisor>}.
    @param reactor: the reactor.
    @return: the registration (added after the supervisor, so that it stops,
        deregistering, first).
    """
    def whenListening() -> Any:
        return supervisor.whenReady().addCallback(lambda _: supervisor.addresses("rpc-listen"))

    return registryService(options, whenListening, lambda: options["rpc-service-names"], reactor)


class _Main(MultiService):
    """
    The services of C{twistd txgetty}: when a server cannot listen (port in
    use, permission), print one line saying what, why and which option to
    change, and exit with status 1 (instead of twistd's traceback).

    @ivar listeners: for each server, its option and descriptions (a
        supervisor: two such pairs, flat).
    @ivar registration: the C{--registry} L{ServerAnnouncement} (its
        C{registered} and C{whenRegistered()}), or C{None}.
    @ivar daemon: twistd runs as a daemon (it reports a start failure to
        the terminal only for an exception, not for an exit).
    """

    def __init__(self, daemon: bool = False) -> None:
        super().__init__()
        self.listeners: dict[Any, tuple] = {}
        self.daemon = daemon
        self.registration: Any = None

    def startService(self) -> None:
        """
        Start the services in order; a listening failure ends the process.

        @raise SystemExit: a server could not listen.
        @raise ListenError: the same, when twistd runs as a daemon (its
            parent prints the message; the log has the line).
        """
        Service.startService(self)
        for service in self:
            try:
                service.startService()
            except (CannotListenError, OSError) as e:
                line = describeListenError(e, *_optionOf(e, self.listeners.get(service, ("--listen", []))))
                if self.daemon:
                    _log.error("{reason}", reason=line, error=type(e).__name__)
                    raise ListenError(line) from None
                # SystemExit with a text: Python prints it on stderr (twistd
                # logs its stderr; under twist logging has not begun yet).
                raise SystemExit(line) from None


def _optionOf(error: BaseException, entry: tuple) -> tuple[str, list[str]]:
    """
    @param error: why a service could not listen.
    @param entry: C{(option, descriptions)} pairs, flat: a supervisor
        serves both C{--listen} and C{--rpc-listen}.
    @return: the pair whose descriptions name the error's port (the first
        if none does).
    """
    pairs = list(zip(entry[::2], entry[1::2]))
    port = str(getattr(error, "port", None))
    return next((pair for pair in pairs if any(port in d for d in pair[1])), pairs[0])


def makeWorkerService(options: dict, sockets: Any, reactor: Any) -> IService:
    """
    The factory of the workers of C{twistd txgetty --workers N} (see
    L{txgetty.workers.command}): parse the supervisor's arguments again
    (importing C{--app} and C{--service} code in this worker), and build
    what L{makeService} builds with one process, on the adopted sockets.

    @param options: C{argv}, the supervisor's C{txgetty} arguments.
    @param sockets: the worker's L{AdoptedSockets <txgetty.workers.worker.AdoptedSockets>}.
    @param reactor: the worker's reactor.
    @return: the services.
    @raise usage.UsageError: the arguments or a TLS file are wrong.
    """
    parsed = Options()
    parsed.parseOptions(options["argv"])
    parsed["workers"] = 1
    parsed["registry"] = None  # the supervisor registers, once per listener address
    # The supervisor serves --metrics; a worker serves its own on a private
    # UNIX socket the supervisor asks at each scrape.
    parsed["metrics"] = None
    if options.get("metricsDirectory"):
        from ..metrics.workers import workerSocket

        parsed["metrics"] = "unix:" + workerSocket(options["metricsDirectory"], os.getpid())
    try:
        parsed["listen"] = adoptedListeners(sockets, "listen", parsed["tls"])
        parsed["rpc-listen"] = adoptedListeners(sockets, "rpc-listen", parsed["tls"])
    except ConfigError as e:
        raise usage.UsageError(str(e)) from None
    return makeService(parsed, reactor)


class ListenError(Exception):
    """
    A server of C{twistd txgetty} (as a daemon) could not listen; the
    message says why and what to change.
    """


def describeListenError(error: BaseException, option: str, descriptions: list[str]) -> str:
    """
    @param error: why a server could not listen (usually a
        L{CannotListenError}).
    @param option: C{--listen} or C{--rpc-listen}.
    @param descriptions: the endpoints given to that option.
    @return: one line: what failed, why, and what to change.
    """
    port = getattr(error, "port", None)
    interface = getattr(error, "interface", None)
    cause = getattr(error, "socketError", error)
    number = getattr(cause, "errno", None)
    matching = [d for d in descriptions if port is not None and str(port) in d] or descriptions
    where = matching[0] if len(matching) == 1 else f"{interface or '*'}:{port}"
    rpc = option == "--rpc-listen"
    what = f"txgetty: cannot {'serve RPC' if rpc else 'listen'} on {where}"
    if number == errno.EADDRINUSE and interface is None and isinstance(port, str):
        why = (f"the socket file {port} exists (another server, or one left behind): remove it if no "
               f"server uses it, or give another path with {option}")
    elif number == errno.EADDRINUSE:
        default = " (the default RPC port)" if rpc and descriptions == [DEFAULT_RPC_LISTEN] else (
            " (the default port)" if descriptions == [DEFAULT_LISTEN] else "")
        why = f"port {port}{default} is already in use by another process (another twistd txgetty?)"
        fix = (f"stop it, serve RPC on another port with --rpc-listen tcp:PORT:interface=127.0.0.1, or turn "
               f"RPC off with --no-rpc") if rpc else f"stop it, or give another port with {option} tcp:PORT"
        why = f"{why}; {fix}"
    elif number == errno.EACCES:
        why = (f"permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); give a port of 1024 "
               f"or more with {option}")
    elif number == errno.EADDRNOTAVAIL:
        why = (f"{interface} is not an address of this host; fix interface= in {option} (127.0.0.1, ::1, or "
               f"0.0.0.0 for every address)")
    else:
        why = f"{getattr(cause, 'strerror', None) or cause}; check {option}"
    return f"{what}: {why}"


def _noRpcServer(options: Options) -> None:
    """
    Say why no RPC server starts: the user's own configuration turned the
    demo services off, and no C{--service} is given.
    """
    log = _log.warn if options["rpc-listen-given"] else _log.info
    log("txgetty rpc: no RPC server started: no --service is given, and the demo services Echo, Ping and "
        "Status are off because {reason} is; add --service MODULE:OBJECT, or --rpc-demo to serve the demo "
        "services", reason=options["demo-off-by"])


def _rpcServer(options: Options, reactor: Any, pool: TaskPool | None) -> tuple[IService, RpcServer]:
    """
    @return: the RPC server (with a pool of its own for blocking methods if
        there is no C{--task-pool}) as one service, and the server itself.
    """
    holder = MultiService()
    if pool is None:
        pool = TaskPool(4, reactor=reactor, name="txgetty-rpc")
        pool.setServiceParent(holder)
    rpc = RpcServer(
        options["rpc-listen"], reactor=reactor, config=options["config"], tls=options["tls"], taskPool=pool,
        maxInFlight=options["rpc-max-in-flight"], shutdownTimeout=options["rpc-shutdown-timeout"],
        idleTimeout=options["rpc-idle-timeout"], compressor=options["rpc-compressor"],
        compressThreshold=options["rpc-compress-threshold"], auth=options["authCallable"],
        hooks=options["hooks"], raiseSynchronously=True, **table.keywords(options, LISTENER_SETTINGS),
    )
    if options["demo"]:
        registerBuiltins(rpc)
    for name, obj in options["services"]:
        rpc.register(obj, name)
    rpc.setServiceParent(holder)
    return holder, rpc
