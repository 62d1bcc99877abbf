"""Put ahead on a server's PYTHONPATH (rpc.py's txgetty_rpc_json_std): orjson cannot be
imported, so txgetty's JSON serializer uses the standard library alone."""

raise ImportError("orjson is hidden from this benchmark server (benchmarks/peers/no_orjson)")
