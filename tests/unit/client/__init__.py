"""
Unit tests of L{txgetty.client}.
"""
