"""
Unit tests of L{txgetty.session}.
"""
