"""
The interfaces of service discovery: the etcd operations that registration
and watching need (L{IEtcdClient}, provided by L{EtcdClient
<txgetty.discovery.etcd.EtcdClient>} and by the in-memory L{MemoryEtcd
<txgetty.discovery.testing.MemoryEtcd>}), and what a L{ServiceWatcher
<txgetty.discovery.watcher.ServiceWatcher>} tells the code that balances
over the servers it finds (L{IServerListListener}).

Keys are text (UTF-8 on the wire); values are bytes (a C{str} given is
encoded as UTF-8).  Revisions and lease IDs are Python C{int}s.  Every
operation returns a L{Deferred <twisted.internet.defer.Deferred>} that fails
with an L{EtcdError <txgetty.discovery.errors.EtcdError>}, with
L{EtcdUnavailableError <txgetty.discovery.errors.EtcdUnavailableError>}
when etcd cannot be reached or does not answer in time.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IEtcdWatch(Interface):
    """
    A running watch of a key prefix (see L{IEtcdClient.watchPrefix}).
    """

    prefix = Attribute("The key prefix watched (C{str}).")
    revision = Attribute("The store revision when etcd created the watch (C{int}).")

    def stop() -> object:
        """
        Cancel the watch: no event is delivered after this call.

        @return: a L{Deferred} firing with C{None} once the stream is closed
            (at once if the watch already ended).
        """

    def whenDone() -> object:
        """
        @return: a L{Deferred} that fires with C{None} once L{stop} ended
            the watch, or fails with the reason it ended otherwise:
            L{EtcdWatchCanceledError
            <txgetty.discovery.errors.EtcdWatchCanceledError>} (etcd
            cancelled it, e.g. after a compaction),
            L{EtcdUnavailableError
            <txgetty.discovery.errors.EtcdUnavailableError>} (the stream was
            lost).
        """


class IEtcdClient(Interface):
    """
    The etcd v3 operations service discovery uses.
    """

    url = Attribute("The etcd endpoint, C{http://HOST:PORT} (C{str}).")

    def grantLease(ttl: int) -> object:
        """
        Create a lease.

        @param ttl: its time to live in seconds; etcd raises a TTL below its
            minimum (2 s with its default election timeout) to that minimum.
        @return: a L{Deferred} firing with the lease ID (C{int}).
        """

    def keepAliveOnce(leaseID: int) -> object:
        """
        Renew a lease once.

        @param leaseID: the lease.
        @return: a L{Deferred} firing with the lease's TTL after renewal in
            seconds, or C{0} when the lease no longer exists.
        """

    def revokeLease(leaseID: int) -> object:
        """
        Revoke a lease: etcd deletes every key attached to it, at once.

        @param leaseID: the lease.
        @return: a L{Deferred} firing with C{True}, or C{False} when the
            lease no longer existed.
        """

    def leaseTimeToLive(leaseID: int) -> object:
        """
        @param leaseID: the lease.
        @return: a L{Deferred} firing with the seconds the lease has left,
            C{-1} when it does not exist.
        """

    def put(key: str, value: bytes | str, lease: int | None = None) -> object:
        """
        Set a key.

        @param key: the key.
        @param value: its value.
        @param lease: a lease to attach the key to (deleted with it).
        @return: a L{Deferred} firing with the store revision of the write.
        @raise EtcdLeaseNotFoundError: (in the Deferred) the lease does not
            exist.
        """

    def get(key: str) -> object:
        """
        @param key: the key.
        @return: a L{Deferred} firing with its value (C{bytes}), or C{None}
            when it does not exist.
        """

    def delete(key: str) -> object:
        """
        Delete a key.

        @param key: the key.
        @return: a L{Deferred} firing with the number of keys deleted (0 or
            1).
        """

    def getPrefix(prefix: str) -> object:
        """
        Read every key that starts with a prefix, in one consistent read.

        @param prefix: the prefix (not empty).
        @return: a L{Deferred} firing with C{(revision, {key: value})}: the
            store revision of the read and the keys found.
        """

    def watchPrefix(prefix: str, startRevision: int, onEvent: object) -> object:
        """
        Watch every key that starts with a prefix.

        @param prefix: the prefix (not empty).
        @param startRevision: the first revision to report (the revision of
            a L{getPrefix} plus one misses nothing); C{0} means "from now".
        @param onEvent: called with each L{WatchEvent
            <txgetty.discovery.etcd.WatchEvent>}, in revision order.
        @return: a L{Deferred} firing with an L{IEtcdWatch} once etcd has
            created the watch.
        """

    def version() -> object:
        """
        A cheap request that shows etcd answers.

        @return: a L{Deferred} firing with etcd's version, e.g.
            C{{"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}}.
        """

    def close() -> object:
        """
        Stop every watch and close idle connections.

        @return: a L{Deferred} firing once done.
        """


class IServerListListener(Interface):
    """
    Told by a L{ServiceWatcher <txgetty.discovery.watcher.ServiceWatcher>}
    when the servers of a service change.
    """

    def onServersChanged(added: object, removed: object) -> None:
        """
        Servers joined or left.

        Both arguments map an address (C{"host:port"}) to its L{ServerEntry
        <txgetty.discovery.watcher.ServerEntry>}.  A server whose entry
        changed under the same address (restarted, new weight) is in both:
        C{removed} holds the old entry and C{added} the new one; apply
        C{removed} first.

        @param added: the servers that joined.
        @param removed: the servers that left.
        """
