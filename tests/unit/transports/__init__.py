"""
Unit tests of L{txgetty.transports}.
"""
