"""
Unit tests of L{txgetty.discovery}.
"""
