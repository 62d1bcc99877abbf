"""
Unit tests of L{txgetty.server}.
"""
