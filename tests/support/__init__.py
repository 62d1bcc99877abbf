"""
The one support package of the tests: certificates, servers and clients on
port 0, RPC, logs, processes, the package's metadata, transports, etcd,
the examples and docs, state-machine tables, a task pool run by hand, the rule for real components (etcd, promtool).
"""
