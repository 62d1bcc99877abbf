"""
Unit tests of L{txgetty.rpc}.
"""
