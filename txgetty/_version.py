"""
The version of txgetty.
"""

__version__ = "0.1.0"
