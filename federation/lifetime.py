"""A node process started by a run dies with it, even when the run is killed outright (Linux).

The launcher names its pid in `FEDERATION_PARENT_PID`; the child's first act
is to ask the kernel for SIGTERM when that parent dies (PR_SET_PDEATHSIG).
It is done in the child rather than between fork and exec: a fork hook in a
process that uses gRPC can trip gRPC's own fork handlers, while a plain
spawn cannot. Imports nothing heavy, so it costs nothing at start-up.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "FEDERATION_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent() -> None:
    """If a launcher asked for it, get SIGTERM when it dies; exit at once if it is already gone."""
    parent = os.environ.pop(PARENT_ENV, "")  # not for our own children: their parent is us
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(parent):  # the parent died before prctl took effect
        os._exit(1)
