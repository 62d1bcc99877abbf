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
        C{"ShuttingDown"}, C{"BadRequest"}, C{"FrameError"},
        C{"BadResponse"}, C{"ResponseTooLarge"}).
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


class ServiceError(RpcError):
    """
    An error a method means to answer with: raise it (or a subclass of it)
    in an RPC method for a failure the caller is expected to handle.  The
    caller gets its type name, message and C{code}, as for any exception;
    the server logs it as one info line without a traceback, where any
    other exception is logged at error level with its traceback.

    @ivar code: an optional error code (text or an integer), sent as the
        response's C{error-code}; C{None} for none.
    """

    def __init__(self, message: str, code: str | int | None = None) -> None:
        """
        @param message: what went wrong, for the caller.
        @param code: an optional error code for programs.
        """
        super().__init__(message)
        self.code = code


class BadResponse(RpcError):
    """
    A method's result cannot be serialized with the request's serializer
    (for example C{bytes}, or NaN, in JSON): the server answers the call
    with this error type instead, and the connection stays open.
    """


class ResponseTooLarge(RpcError):
    """
    A method's response would be longer than the connection's C{maxMsgLen}
    (after compression, if any): the server answers the call with this
    error type instead of a frame the client would refuse, and the
    connection stays open.
    """
