"""
Interoperability tests: independent clients (socat, Chromium, the
websockets library), the docs and examples as a user runs them, and the
package (metadata, wheel and sdist contents).
"""
