"""
txgetty's RPC layer: named services over a seata-v1-style wire frame (see
C{docs/rpc-protocol.md}), served by L{RpcServer} and called with
L{RpcClient}.
"""

from .builtin import Echo, Ping, Status, registerBuiltins
from .client import Proxy, RpcClient
from .errors import (
    CallTimeoutError,
    ConnectionLostError,
    FrameError,
    NoServerError,
    RegistrationError,
    RemoteError,
    RpcError,
)
from .frame import Frame, RpcCodec
from .registry import rpcmethod
from .server import CallInfo, RpcServer, currentCall

__all__ = [
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
    "RpcClient",
    "RpcCodec",
    "RpcError",
    "RpcServer",
    "Status",
    "registerBuiltins",
    "currentCall",
    "rpcmethod",
]
