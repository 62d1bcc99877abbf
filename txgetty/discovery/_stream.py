"""
An incremental parser for a stream of JSON objects, as etcd's gRPC gateway
sends for a streaming call (C{/v3/watch}): one JSON object per message, one
after the other in the HTTP body (etcd puts a newline between them, which
this parser does not rely on), cut into chunks anywhere, even inside a
multi-byte UTF-8 character.

The parser finds where each top-level object ends by tracking brace depth
and string state over the new bytes only, so feeding N bytes costs O(N)
whatever the chunking; each complete object is then decoded with L{json}.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: The most bytes one object may take before the stream is called broken
#: (etcd's own request limit is 1.5 MiB; a watch message may batch events).
DEFAULT_MAX_OBJECT_BYTES = 32 * 1024 * 1024

_WHITESPACE = b" \t\r\n"
# Outside a string only braces and quotes matter; inside one, quotes and
# backslashes.  Brackets need no tracking: a top-level value is an object,
# so it ends at the brace that brings the depth back to 0.
_OUTSIDE = re.compile(rb'[{}"]')
_INSIDE = re.compile(rb'["\\]')


class JSONStreamError(ValueError):
    """
    The stream is not a sequence of JSON objects (or one object is too big);
    nothing more can be read from it.
    """


class JSONObjectStream:
    """
    Splits a byte stream into JSON objects.

    Feed it chunks with L{feed}; it returns the objects completed by each
    chunk, in order.  After a L{JSONStreamError} the parser is unusable.

    @ivar maxObjectBytes: the most bytes one object may take.
    """

    def __init__(self, maxObjectBytes: int = DEFAULT_MAX_OBJECT_BYTES) -> None:
        """
        @param maxObjectBytes: the most bytes one object may take.
        """
        self.maxObjectBytes = maxObjectBytes
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer already scanned
        self._depth = 0
        self._inString = False
        self._broken: JSONStreamError | None = None

    @property
    def pending(self) -> int:
        """
        @return: how many bytes of an unfinished object are buffered.
        """
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Any]:
        """
        Add bytes to the stream.

        @param data: the next chunk, of any length.
        @return: the objects that chunk completed (possibly none).
        @raise JSONStreamError: the bytes cannot belong to a stream of JSON
            objects (the message says where), or an object exceeds
            C{maxObjectBytes}.
        """
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        objects: list[Any] = []
        try:
            while self._scanForEnd():
                objects.append(self._takeObject())
            if len(self._buffer) > self.maxObjectBytes:
                raise JSONStreamError(
                    f"a JSON object in the stream exceeds {self.maxObjectBytes} bytes"
                )
        except JSONStreamError as e:
            self._broken = e
            raise
        return objects

    def _scanForEnd(self) -> bool:
        """
        Scan the unscanned bytes until an object ends or the buffer runs out.

        @return: whether C{_buffer[:_scanned]} now holds a complete object
            (after optional leading whitespace).
        @raise JSONStreamError: a byte outside an object is not whitespace
            or an opening brace.
        """
        buffer = self._buffer
        while self._scanned < len(buffer):
            if self._depth == 0:
                if not self._skipToObject():
                    return False
                continue
            pattern = _INSIDE if self._inString else _OUTSIDE
            match = pattern.search(buffer, self._scanned)
            if match is None:
                self._scanned = len(buffer)
                return False
            index = match.start()
            if buffer[index] == ord("\\") and index + 1 >= len(buffer):
                self._scanned = index  # the escaped byte is still to come
                return False
            if self._step(index):
                return True
        return False

    def _skipToObject(self) -> bool:
        """
        Between objects: drop whitespace, then expect an opening brace.

        @return: whether an object starts (the brace is consumed).
        @raise JSONStreamError: anything else is there.
        """
        buffer = self._buffer
        start = self._scanned
        while start < len(buffer) and buffer[start] in _WHITESPACE:
            start += 1
        del buffer[:start]
        self._scanned = 0
        if not buffer:
            return False
        if buffer[0] != ord("{"):
            raise JSONStreamError(
                f"expected a JSON object in the stream, got {bytes(buffer[:40])!r}"
            )
        self._depth = 1
        self._scanned = 1
        return True

    def _step(self, index: int) -> bool:
        """
        Account for the special byte at C{index}.

        @param index: where a brace, quote or backslash is (a backslash is
            never the last byte of the buffer here).
        @return: whether it closed the top-level object.
        """
        byte = self._buffer[index]
        if byte == ord("\\"):
            self._scanned = index + 2  # skip the escaped byte, whatever it is
            return False
        self._scanned = index + 1
        if byte == ord('"'):
            self._inString = not self._inString
        elif byte == ord("{"):
            self._depth += 1
        else:
            self._depth -= 1
        return self._depth == 0

    def _takeObject(self) -> Any:
        """
        Remove the complete object at the start of the buffer and decode it.

        @return: the decoded object.
        @raise JSONStreamError: its text is not valid JSON.
        """
        raw = bytes(self._buffer[: self._scanned])
        del self._buffer[: self._scanned]
        self._scanned = 0
        try:
            return json.loads(raw)
        except ValueError as e:
            raise JSONStreamError(f"a message in the stream is not valid JSON ({e}): {raw[:80]!r}") from None
