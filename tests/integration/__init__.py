"""
Integration tests: real sockets on 127.0.0.1 (and ::1) port 0, real
processes, a real etcd.
"""
