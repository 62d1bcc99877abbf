"""
Unit tests of L{txgetty.tools}.
"""
