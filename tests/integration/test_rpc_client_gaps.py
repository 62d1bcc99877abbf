"""
The gaps the workers' tests found in L{RpcClient <txgetty.rpc.RpcClient>}
(docs/workers.md, I{RPC clients through a reload}), each as a test of the
behaviour a user expects.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txgetty import ReconnectPolicy
from txgetty.rpc import ConnectionLostError, RpcClient, RpcServer, currentCall


class Dropper:
    """
    A service whose C{drop} closes the caller's connection without an
    answer (as a worker killed in the middle of a call).
    """

    def drop(self) -> Deferred:
        currentCall().session.close()
        return Deferred()

    def echo(self, value: Any) -> Any:
        return value


class ParkedCallTests(TestCase):
    """
    A call made while the client's only connection is closing.
    """

    timeout = 30

    async def test_callFromTheLostCallsErrback(self) -> None:
        """
        A call made in the errback of a call whose connection was just lost
        (a retry loop does exactly that) is sent once the client has
        reconnected (it used to be parked and never sent, ending with its
        timeout: the pool's C{whenConnected()} fired at once on the closing
        session).
        """
        server = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor)
        server.register(Dropper(), "Dropper")
        server.startService()
        self.addCleanup(server.stopService)
        [address] = await server.whenListening()
        client = RpcClient(f"127.0.0.1:{address.port}", reactor=reactor, timeout=3,
                           reconnect=ReconnectPolicy(initialDelay=0.05, maxDelay=0.1))
        client.startService()
        self.addCleanup(client.stopService)
        await client.whenConnected()
        retried: Deferred = Deferred()

        def lost(failure: Any) -> None:
            failure.trap(ConnectionLostError)
            client.call("Dropper.echo", "again").chainDeferred(retried)

        client.call("Dropper.drop").addErrback(lost)
        self.assertEqual(await retried, "again")
