"""
C{python -m txgetty.workers}: run one worker process (started by a
L{WorkerSupervisor <txgetty.workers.supervisor.WorkerSupervisor>}; see
L{txgetty.workers.worker}).
"""

from .worker import main

main()
