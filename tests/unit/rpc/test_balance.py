"""
Tests for L{txgetty.rpc.balance}: consistent hashing of call keys.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from txgetty.rpc.balance import HashRing, hashKey
from txgetty.rpc.calling import ClientCall

ADDRESSES = ["10.0.0.1:8091", "10.0.0.2:8091", "10.0.0.3:8091"]


def call(name: str, *args: object, key: object = None) -> ClientCall:
    """
    @return: a call of C{name} with C{args} and the C{hashKey} option C{key}.
    """
    return ClientCall(Deferred(), name, args, {"hashKey": key})


class HashRingTests(SynchronousTestCase):
    """
    L{HashRing}.
    """

    def test_stable(self) -> None:
        """
        A key goes to the same server every time, whichever order the
        addresses were given in.
        """
        ring, other = HashRing(ADDRESSES), HashRing(list(reversed(ADDRESSES)))
        for i in range(50):
            key = f"user-{i}".encode()
            self.assertEqual(ring.lookup(key, ADDRESSES), other.lookup(key, ADDRESSES))

    def test_spread(self) -> None:
        """
        Many keys reach every server.
        """
        ring = HashRing(ADDRESSES)
        owners = {ring.lookup(f"k{i}".encode(), ADDRESSES) for i in range(300)}
        self.assertEqual(owners, set(ADDRESSES))

    def test_downServerSkipped(self) -> None:
        """
        A key whose server is not up goes to the next one up on the ring;
        keys of the servers that are up do not move.
        """
        ring = HashRing(ADDRESSES)
        up = ADDRESSES[1:]
        for i in range(100):
            key = f"k{i}".encode()
            owner = ring.lookup(key, ADDRESSES)
            moved = ring.lookup(key, up)
            self.assertIn(moved, up)
            if owner in up:
                self.assertEqual(moved, owner)

    def test_unknownUp(self) -> None:
        """
        With none of its addresses up, the first address up is used.
        """
        self.assertEqual(HashRing(ADDRESSES).lookup(b"k", ["10.9.9.9:1"]), "10.9.9.9:1")


class HashKeyTests(SynchronousTestCase):
    """
    L{hashKey}.
    """

    def test_default(self) -> None:
        """
        Without a C{hashKey}, the call name and its first argument are
        hashed.
        """
        self.assertEqual(hashKey(call("Cart.get", "ann", 3)), b"Cart.get:ann")
        self.assertEqual(hashKey(call("Cart.list")), b"Cart.list:")

    def test_given(self) -> None:
        """
        A given key is hashed as is (bytes) or as its UTF-8 text.
        """
        self.assertEqual(hashKey(call("Cart.get", key=b"\x00raw")), b"\x00raw")
        self.assertEqual(hashKey(call("Cart.get", key="é")), "é".encode())
        self.assertEqual(hashKey(call("Cart.get", key=42)), b"42")
