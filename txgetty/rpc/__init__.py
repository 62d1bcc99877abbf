"""
txgetty's RPC layer: named services over a seata-v1-style wire frame (see
C{docs/rpc-protocol.md}), served by L{RpcServer} and called with
L{RpcClient}.
"""

from .builtin import Echo, Ping, Status, registerBuiltins
from .client import Proxy, RpcClient
from .errors import (
    BadResponse,
    CallTimeoutError,
    ConnectionLostError,
    FrameError,
    NoServerError,
    RegistrationError,
    RemoteError,
    ResponseTooLarge,
    RpcError,
    ServiceError,
)
from .frame import Frame, RpcCodec
from .services import rpcmethod
from .server import CallInfo, RpcServer, currentCall

__all__ = [
    "BadResponse",
    "CallInfo",
    "CallTimeoutError",
    "ConnectionLostError",
    "Echo",
    "Frame",
    "FrameError",
    "NoServerError",
    "Ping",
    "Proxy",
    "RegistrationError",
    "RemoteError",
    "ResponseTooLarge",
    "RpcClient",
    "RpcCodec",
    "RpcError",
    "RpcServer",
    "ServiceError",
    "Status",
    "registerBuiltins",
    "currentCall",
    "rpcmethod",
]
