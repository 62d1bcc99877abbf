"""
The errors of the RPC layer.  An L{RemoteError} carries what the server
said; the others are raised locally.
"""

from __future__ import annotations

from ..errors import TxGettyError


class RpcError(TxGettyError):
    """
    Base class of the RPC errors.
    """


class RemoteError(RpcError):
    """
    The server answered a call with an error.

    @ivar type: the name of the exception type on the server (e.g.
        C{"ValueError"}, or one of txgetty's: C{"NoSuchService"},
        C{"NoSuchMethod"}, C{"ServerBusy"}, C{"AuthError"},
        C{"ShuttingDown"}, C{"BadRequest"}, C{"DeadlineExceeded"}).
    @ivar message: the error message.
    @ivar code: an optional application error code (the exception's C{code}
        attribute on the server), or C{None}.
    """

    def __init__(self, type: str, message: str, code: str | None = None) -> None:
        """
        @param type: the remote exception type's name.
        @param message: its message.
        @param code: an optional error code.
        """
        self.type = type
        self.message = message
        self.code = code
        super().__init__(f"{type}: {message}" + (f" (code {code})" if code else ""))


class CallTimeoutError(RpcError):
    """
    A call got no answer within its timeout.
    """


class ConnectionLostError(RpcError):
    """
    The connection carrying a call was lost before the answer came.
    """


class NoServerError(RpcError):
    """
    No connection to any server is open to send a call on.
    """


class RegistrationError(RpcError, ValueError):
    """
    A service could not be registered (no name, a duplicate, nothing
    exposed); the message says which and why.
    """


class FrameError(RpcError):
    """
    A frame or its body cannot be built or read (unknown serializer or
    compressor code, undecodable body).
    """
