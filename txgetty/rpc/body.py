"""
The bodies of RPC frames, as both sides encode and decode them (see
docs/rpc-protocol.md, "The body"): a request's body holds the arguments (a
list, or C{{"args": [...], "kwargs": {...}}}; with the raw serializer the
one bytes argument itself), a response's body the result; either is
compressed when it is larger than a threshold and the peer accepts the
compressor.
"""

from __future__ import annotations

from typing import Any, Sequence

from . import frame as F
from .errors import FrameError
from .serializers import DEFAULT_DECOMPRESS_LIMIT, NONE, RAW, SERIALIZERS, compressor, serializer


def encodeArguments(args: Sequence[Any], kwargs: dict[str, Any], serializerCode: int) -> bytes:
    """
    @param args: a call's positional arguments.
    @param kwargs: its keyword arguments.
    @param serializerCode: the serializer to use.
    @return: the serialized arguments of a call: a list, or
        C{{"args", "kwargs"}}; with the raw serializer, the one bytes
        argument itself.
    @raise TypeError: the raw serializer without exactly one bytes
        argument.
    """
    if serializerCode == RAW:
        if kwargs or len(args) != 1 or not isinstance(args[0], (bytes, bytearray, memoryview)):
            raise TypeError("with the raw serializer a call takes exactly one bytes argument")
        return bytes(args[0])
    value = {"args": list(args), "kwargs": kwargs} if kwargs else list(args)
    return serializer(serializerCode).dumps(value)


def decodeArguments(frame: F.Frame, limit: int = DEFAULT_DECOMPRESS_LIMIT) -> tuple[list, dict]:
    """
    @param frame: a request.
    @param limit: the largest decompressed body accepted.
    @return: its positional and keyword arguments.
    @raise FrameError: the body cannot be decoded or has the wrong shape.
    """
    data = frame.body
    try:
        if frame.compressor and data:
            data = compressor(frame.compressor).decompress(data, limit)
        if frame.serializer == RAW:
            return [data], NO_KWARGS
        if not data:
            return [], {}
        value = (SERIALIZERS.get(frame.serializer) or serializer(frame.serializer)).loads(data)
    except FrameError:
        raise
    except Exception as e:
        raise FrameError(f"cannot decode the request body ({type(e).__name__}: {e})") from None
    if type(value) is list:
        return value, NO_KWARGS
    if isinstance(value, dict) and set(value) <= {"args", "kwargs"}:
        args, kwargs = value.get("args", []), value.get("kwargs", {})
        if isinstance(args, list) and isinstance(kwargs, dict):
            if all(type(key) is str for key in kwargs):
                return args, kwargs
            raise FrameError('the names of keyword arguments ("kwargs" keys) must be text')
    raise FrameError('the request body must be a list of arguments or {"args": [...], "kwargs": {...}}')


#: The keyword arguments of every call that has none (shared: never changed).
NO_KWARGS: dict[str, Any] = {}


def encodeBody(value: Any, serializerCode: int, compressorCode: int, threshold: int) -> tuple[bytes, int]:
    """
    @param value: a result to send.
    @param serializerCode: the serializer to use.
    @param compressorCode: the compressor to use above C{threshold}.
    @param threshold: bytes above which the body is compressed.
    @return: the body and the compressor code actually used.
    @raise Exception: the value cannot be serialized.
    """
    body = (SERIALIZERS.get(serializerCode) or serializer(serializerCode)).dumps(value)
    return compressBody(body, compressorCode, threshold)


def compressBody(body: bytes, compressorCode: int, threshold: int) -> tuple[bytes, int]:
    """
    @param body: a serialized body.
    @param compressorCode: the compressor to use above C{threshold}
        (L{NONE <txgetty.rpc.serializers.NONE>}: none).
    @param threshold: bytes above which the body is compressed.
    @return: the body to send and the compressor code actually used.
    """
    if compressorCode and len(body) > threshold:
        return compressor(compressorCode).compress(body), compressorCode
    return body, NONE


def decodeResult(frame: F.Frame, limit: int) -> Any:
    """
    @param frame: a successful response.
    @param limit: the largest decompressed body accepted.
    @return: the result it carries (C{None} for an empty body).
    @raise Exception: the body cannot be decompressed or decoded.
    """
    data = frame.body
    if frame.compressor:
        data = compressor(frame.compressor).decompress(data, limit)
    return serializer(frame.serializer).loads(data) if data else None
