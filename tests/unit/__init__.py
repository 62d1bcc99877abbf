"""
Unit tests, one module per module of txgetty (packages mirrored): fake
clocks, string and memory transports, no sockets.
"""
