"""One node process per state directory: an exclusive lock on `<state_dir>/node.lock`.

The state directory holds the audit log (a hash chain) and the budget ledger
(a running sum of privacy spent). Two processes appending to them at once
fork the chain and each spend the same budget, so a second node on the same
directory must refuse to start. `flock` is released by the kernel when its
holder dies, even by SIGKILL, so a crashed node never leaves a stale lock;
the pid written into the file only serves the refusal message.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from pathlib import Path
from types import TracebackType

from federation.errors import ConfigError

LOCK_NAME = "node.lock"


class StateLock:
    """An exclusive, non-blocking `flock` on a state directory's lock file, held until `release`."""

    def __init__(self, state_dir: Path, fd: int) -> None:
        self.state_dir = state_dir
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_dir: Path) -> StateLock:
        """Lock `state_dir` or raise ConfigError naming the directory and the pid that holds it."""
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _holder(fd)
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ConfigError(str(state_dir), [f"cannot lock {LOCK_NAME}: {error.strerror}"]) from None
            raise ConfigError(
                str(state_dir),
                [
                    f"another node process ({holder}) already uses this state directory; one process per state "
                    "directory keeps the audit chain and the budget ledger whole: stop that node or pass another --state"
                ],
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(state_dir, fd)

    @classmethod
    def wait(cls, state_dir: Path, *, timeout: float) -> StateLock:
        """Lock `state_dir`, waiting up to `timeout` seconds for another holder to let go (a virtual node's message).

        On Flower's engines a node lives in no one process: each of its
        messages takes the lock for as long as it is served.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                return cls.acquire(state_dir)
            except ConfigError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close; the pid stays in the file (harmless: the lock, not the file, is what counts)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _holder(fd: int) -> str:
    """'pid N' as the holder wrote it, or why it is unknown (it may be between locking and writing)."""
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return f"pid {text}" if text.isdigit() else "pid unknown, it may still be starting"


_held: dict[Path, StateLock] = {}
_held_guard = threading.Lock()


def hold_state_dir(state_dir: Path) -> StateLock:
    """Lock `state_dir` for the rest of this process's life.

    The lock guards against a second process. A node restarted inside the
    same process (as tests do after `server.stop`) shares the lock it holds
    already, so the directory stays locked between the two.
    """
    key = state_dir.resolve()
    with _held_guard:
        lock = _held.get(key)
        if lock is None or not lock.held:
            lock = _held[key] = StateLock.acquire(key)
        return lock
