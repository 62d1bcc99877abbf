"""
The txgetty test suite (run with C{trial tests}).
"""
