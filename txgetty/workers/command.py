"""
How a worker process is started: its configuration (L{WorkerConfig}, JSON
in the environment variable L{CONFIG_ENV}) and the command that runs it
(L{WorkerCommand}: C{python -m txgetty.workers} by default).

The worker builds its services with a I{factory}, C{MODULE:CALLABLE}, called
as C{factory(options, sockets, reactor)} with the JSON-able C{options} given
to the supervisor and the L{AdoptedSockets <txgetty.workers.worker.AdoptedSockets>}
of its slot; it returns an L{IService <twisted.application.service.IService>}
(or a L{Deferred <twisted.internet.defer.Deferred>} of one).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from zope.interface import Interface, implementer

from ..errors import ConfigError

#: The environment variable holding a worker's configuration.
CONFIG_ENV = "TXGETTY_WORKER"
#: The worker's end of the control channel.
CONTROL_FD = 3
#: The first child descriptor of the datagram sockets of a slot.
FIRST_SOCKET_FD = 4


@dataclass
class ListenerInfo:
    """
    One listener as a worker sees it.

    @ivar id: its name in messages (C{"L0"}, C{"L1"}, ...).
    @ivar group: the group it was given in (C{"listen"}, C{"rpc-listen"}, ...).
    @ivar descriptions: the descriptions it serves (several WebSocket URLs of
        one port share one listener).
    @ivar kind: C{"stream"} or C{"datagram"}.
    @ivar family: C{"INET"}, C{"INET6"} or C{"UNIX"}.
    @ivar address: the bound address, C{[host, port]} or a UNIX path.
    @ivar fd: the worker's descriptor of its socket (datagram only).
    """

    id: str
    group: str
    descriptions: list[str]
    kind: str
    family: str
    address: Any
    fd: int | None = None


@dataclass
class WorkerConfig:
    """
    Everything a worker process is told.

    @ivar slot: its slot (0 to N - 1).
    @ivar generation: how many workers the supervisor started before it
        (unique per worker of one supervisor).
    @ivar factory: C{MODULE:CALLABLE} making its services.
    @ivar options: the JSON-able options given to the factory.
    @ivar listeners: the listeners it serves.
    @ivar control: its descriptor of the control channel.
    @ivar logLevel: the lowest level of the log events it sends.
    @ivar supervisorPid: the supervisor's process id.
    @ivar loadInterval: seconds a load report waits to gather changes.
    """

    slot: int
    generation: int
    factory: str
    options: dict = field(default_factory=dict)
    listeners: list[ListenerInfo] = field(default_factory=list)
    control: int = CONTROL_FD
    logLevel: str = "info"
    supervisorPid: int = 0
    loadInterval: float = 0.01

    def toJSON(self) -> str:
        """
        @return: the configuration as JSON.
        """
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def fromJSON(cls, text: str) -> WorkerConfig:
        """
        @param text: what L{toJSON} made.
        @return: the configuration.
        @raise ConfigError: it is not such JSON.
        """
        try:
            data = json.loads(text)
            data["listeners"] = [ListenerInfo(**listener) for listener in data.get("listeners", [])]
            return cls(**data)
        except (ValueError, TypeError, KeyError) as e:
            raise ConfigError(f"bad worker configuration in ${CONFIG_ENV}: {e}") from None


class IWorkerCommand(Interface):
    """
    Says how to run a worker.
    """

    def spawnArguments(config: WorkerConfig) -> tuple[str, list[str], dict[str, str]]:
        """
        @param config: the worker's configuration.
        @return: the executable, its argument vector (C{argv[0]} included)
            and its environment.
        """


@implementer(IWorkerCommand)
class WorkerCommand:
    """
    Run C{PYTHON -m txgetty.workers} with the configuration in the
    environment.

    @ivar factory: C{MODULE:CALLABLE} making the worker's services.
    @ivar options: the JSON-able options given to the factory.
    """

    def __init__(self, factory: str, options: Mapping[str, Any] | None = None, *, python: str | None = None,
                 environ: Mapping[str, str] | None = None, logLevel: str = "info", path: list[str] | None = None,
                 ) -> None:
        """
        @param factory: C{MODULE:CALLABLE}, see L{txgetty.workers.command}.
        @param options: JSON-able options for it (checked here).
        @param python: the interpreter (default: this one).
        @param environ: the environment to start from (default: this
            process's).
        @param logLevel: the lowest level of the log events workers send.
        @param path: directories put first on the worker's C{PYTHONPATH}
            (default: this process's current directory, so that
            C{--app mymodule:...} imports there as in the supervisor).
        @raise ConfigError: C{factory} or C{options} cannot work.
        """
        module, sep, name = factory.partition(":")
        if not (module and sep and name):
            raise ConfigError(f"a worker factory is MODULE:CALLABLE, got {factory!r}")
        try:
            json.dumps(dict(options or {}))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"worker options must be JSON-able: {e}") from None
        self.factory = factory
        self.options = dict(options or {})
        self.python = python or sys.executable
        self.environ = dict(os.environ if environ is None else environ)
        self.logLevel = logLevel
        self.path = [os.getcwd()] if path is None else list(path)

    def spawnArguments(self, config: WorkerConfig) -> tuple[str, list[str], dict[str, str]]:
        """
        @param config: the worker's configuration (its C{factory},
            C{options} and C{logLevel} are set from this command).
        @return: see L{IWorkerCommand.spawnArguments}.
        """
        config.factory, config.options, config.logLevel = self.factory, self.options, self.logLevel
        env = dict(self.environ)
        env[CONFIG_ENV] = config.toJSON()
        env["PYTHONPATH"] = os.pathsep.join([*self.path, *filter(None, [env.get("PYTHONPATH")])])
        env.setdefault("PYTHONUNBUFFERED", "1")
        # systemd's socket variables are the supervisor's, not the workers'.
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            env.pop(name, None)
        return self.python, [self.python, "-m", "txgetty.workers", f"slot={config.slot}"], env
