"""
Workers on one port: a supervisor process binds every listener once and
runs N worker processes that serve them (see docs/workers.md).

  - L{WorkerSupervisor}: the supervisor, an L{IService <twisted.application.service.IService>};
  - L{WorkerCommand}: how a worker process is started (C{python -m
    txgetty.workers}, a factory C{MODULE:CALLABLE} building its
    services from JSON-able options and its L{AdoptedSockets});
  - L{AdoptedStreamEndpoint}, L{AdoptedDatagramEndpoint}: the worker's side
    of the supervisor's sockets, as endpoints to listen on.
"""

from .adopted import AdoptedDatagramEndpoint, AdoptedStreamEndpoint, IDatagramServerEndpoint
from .command import IWorkerCommand, ListenerInfo, WorkerCommand, WorkerConfig
from .sockets import ListenSpec, listenSpec, listenSpecs
from .supervisor import WorkerSupervisor, workerCount
from .worker import AdoptedSockets

__all__ = [
    "AdoptedDatagramEndpoint",
    "AdoptedSockets",
    "AdoptedStreamEndpoint",
    "IDatagramServerEndpoint",
    "IWorkerCommand",
    "ListenSpec",
    "ListenerInfo",
    "WorkerCommand",
    "WorkerConfig",
    "WorkerSupervisor",
    "listenSpec",
    "listenSpecs",
    "workerCount",
]
