"""
What today's L{RpcClient <txgetty.rpc.RpcClient>} lacks to ride through a
worker's death or a reload without help (docs/workers.md, I{What RPC
clients need}): the gaps found by the workers' tests, each as a test of the
behaviour a user expects, marked C{todo} until the RPC client is changed
(then trial reports an unexpected success: drop the mark).
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
        reconnected.

        Today it is parked and never sent: C{RpcClient._waitForConnection}
        asks the pool C{whenConnected()}, which fires at once because the
        closing session is still in the pool's open list, then fails with
        C{NoSessionError} when it picks a session; C{_poolFailed} ignores
        that failure (slots are still trying) and leaves C{_watching} set, so
        nothing ever sends the parked call: it ends with its timeout.
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

    test_callFromTheLostCallsErrback.todo = (  # type: ignore[attr-defined]
        "RpcClient gap: a call parked while the only session is closing is never sent (docs/workers.md)"
    )
