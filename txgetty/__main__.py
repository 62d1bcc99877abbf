"""
C{python -m txgetty}: the C{txgetty} command (L{txgetty.tools.cli.main}), for when
the console script is not on C{PATH}.
"""

from txgetty.tools.cli import main

if __name__ == "__main__":
    main()
