"""One driftwatch run at a time per database: an flock'd file beside it.

The kernel drops an flock when its process dies, so a crashed run never blocks the next one; the
holder's details stay in the file, which tells the next run that the previous one did not finish.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from .errors import LockHeld, StoreError

logger = logging.getLogger(__name__)


@dataclass
class RunLock:
    """``with RunLock(path, wait=...)``; raises LockHeld naming the holder, or waits for it."""

    path: Path
    wait: float | None = None  # seconds to wait for the holder; None: do not wait
    command: str = "run"
    stale: dict[str, object] | None = None  # the details a crashed previous holder left

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {self.path}: {exc.strerror}") from exc
        deadline = None if self.wait is None else time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is None or time.monotonic() >= deadline:
                    holder = self._read()
                    os.close(self._fd)
                    raise LockHeld(f"another driftwatch run holds {self.path}: {describe(holder)}"
                                   + ("" if self.wait is None else f" (waited {self.wait:g}s)")) from None
                time.sleep(0.2)
        previous = self._read()
        if previous:
            self.stale = previous
            logger.warning("the previous run (%s) did not finish cleanly; cleaning up after it", describe(previous))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(info).encode(), 0)
        os.fsync(self._fd)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        os.ftruncate(self._fd, 0)  # an empty file means the last holder finished
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)

    def _read(self) -> dict[str, object]:
        try:
            raw = os.pread(self._fd, 4096, 0)
            data = json.loads(raw) if raw.strip() else {}
        except (OSError, ValueError):
            return {"pid": "?"}
        return data if isinstance(data, dict) else {}


def describe(holder: dict[str, object]) -> str:
    """``pid 123 on host-a (driftwatch run), started 2026-12-03T04:00:00+00:00``."""
    if not holder:
        return "holder unknown"
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} (driftwatch {holder.get('command', '?')}), "
            f"started {holder.get('started', '?')}")
