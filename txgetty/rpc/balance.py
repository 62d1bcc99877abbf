"""
Consistent hashing for the C{consistent-hash} balance of L{RpcClient
<txgetty.rpc.client.RpcClient>}: which server a call's key goes to.
"""

from __future__ import annotations

import bisect
import zlib

from .calling import ClientCall


class HashRing:
    """
    Consistent hashing of call keys onto server addresses (100 points per
    address on a CRC32 ring).
    """

    def __init__(self, addresses: list[str]) -> None:
        """
        @param addresses: the server addresses.
        """
        points = sorted((zlib.crc32(f"{a}#{i}".encode()), a) for a in addresses for i in range(100))
        self.keys = [p[0] for p in points]
        self.owners = [p[1] for p in points]

    def lookup(self, key: bytes, up: list[str]) -> str:
        """
        @param key: the call's key.
        @param up: addresses with open sessions.
        @return: the first address at or after the key's point that is up.
        """
        start = bisect.bisect(self.keys, zlib.crc32(key))
        upSet = set(up)
        for i in range(len(self.owners)):
            owner = self.owners[(start + i) % len(self.owners)]
            if owner in upSet:
                return owner
        return up[0]


def hashKey(pending: ClientCall) -> bytes:
    """
    @return: what consistent hashing hashes for a call.
    """
    key = pending.options["hashKey"]
    if key is None:
        key = f"{pending.name}:{pending.args[0] if pending.args else ''}"
    return key if isinstance(key, bytes) else str(key).encode("utf-8")
