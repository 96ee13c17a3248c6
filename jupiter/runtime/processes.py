"""What a process the agent starts does to itself first: die with its parent, and cap its memory.

Task workers and helper processes call these before they run any user code:

* `die_with_parent`: the kernel kills the process when the agent that started
  it dies (Linux `PR_SET_PDEATHSIG`), so an agent killed with `kill -9`
  leaves no worker stuck in a task, and no helper holding its port, behind
  the agent the supervisor restarts. Elsewhere it does nothing.
* `limit_memory`: caps the data the process may allocate (`RLIMIT_DATA`:
  heap and private anonymous mappings, what a task's objects use; shared
  libraries and mapped files do not count), so an allocation beyond it fails
  with MemoryError instead of growing until the machine swaps.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent exits; exits now if it already has."""
    parent = os.getppid()
    try:
        # The process's own symbols include the C library's: no search for libc.so (which runs ldconfig).
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: the agent's own teardown stops its children
    if os.getppid() != parent:
        os._exit(1)  # the parent died before the request took effect


def limit_memory(limit: int) -> None:
    """Cap this process's data at `limit` bytes (never above the hard limit it already has)."""
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    value = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (value, value))
