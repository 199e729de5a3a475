"""The lock of a run folder that is being trained: one writer at a time, and readers that know.

``train`` holds ``RUN/.training.lock`` (the process id, the host and the process's start time, as
JSON) from before it writes the folder until it returns. A second ``train`` (``--resume``,
``--overwrite``, ``--resume-if-exists``) on that folder refuses, naming the owner and its step
(the last step in metrics.jsonl); ``eval``, ``predict`` and ``export`` of a run without its final
checkpoint say it is still training rather than suggest ``--resume``. A lock left by a process
that is gone (killed, the machine restarted) is stale: the next ``train`` takes it over with a
note. A lock from another host is not taken over, since that process cannot be looked at from here.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UsageError

LOCK_NAME = ".training.lock"


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (Linux: ticks since boot, /proc/PID/stat field 22), None where unknown:
    a process id is reused after its process ends, its start time is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process: it exists
        return True
    now = _start_time(pid)
    return started is None or now is None or now == started


@dataclass
class Owner:
    """Who holds a run folder's lock."""

    pid: int
    host: str
    started: str | None

    def is_alive(self) -> bool | None:
        """Whether the owner still runs; None where it runs on another host."""
        return _alive(self.pid, self.started) if self.host == socket.gethostname() else None


def lock_owner(folder: Path) -> Owner | None:
    """The owner of ``folder``'s lock, None when nothing holds it (or the lock file is unreadable)."""
    try:
        record = json.loads((Path(folder) / LOCK_NAME).read_text())
        return Owner(int(record["pid"]), str(record["host"]), record.get("started"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def training_step(folder: Path) -> int | None:
    """The last step a run logged to its metrics.jsonl, None before its first log line."""
    try:   # the line being written as this reads may be cut short: the one before it says as much
        lines = (Path(folder) / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def live_owner(folder: Path) -> Owner | None:
    """The owner of ``folder``'s lock while it trains (on this host, or on another one), else None."""
    owner = lock_owner(folder)
    return owner if owner is not None and owner.is_alive() is not False else None


def describe_training(folder: Path, owner: Owner) -> str:
    """``process 1234 on host x, at step 120`` for a message about a run being trained."""
    step = training_step(folder)
    where = f" on host {owner.host}" if owner.host != socket.gethostname() else ""
    return f"process {owner.pid}{where}, " + (f"at step {step}" if step is not None else "before its first step")


class RunLock:
    """Held by the process that trains a run folder; :meth:`acquire` refuses a folder trained by another."""

    def __init__(self, folder: Path):
        self.folder, self.held = Path(folder), False

    def check(self) -> None:
        """Refuses when another live process trains the folder (before anything in it is touched)."""
        owner = live_owner(self.folder)
        if owner is not None and owner.pid != os.getpid():
            other_host = owner.host != socket.gethostname()
            raise UsageError(f"run folder {self.folder} is being trained by {describe_training(self.folder, owner)}; "
                             "wait for it to finish, stop it (Ctrl-C) and then continue it with "
                             f"`stochreg train --resume {self.folder}`, or choose another --out"
                             + (f" (if no process trains it any more, delete {self.folder / LOCK_NAME})"
                                if other_host else ""))

    def acquire(self, log: Callable[[str], None]) -> None:
        """Takes the lock (the folder exists); a stale one is taken over with a note."""
        self.check()
        path = self.folder / LOCK_NAME
        stale = lock_owner(self.folder)
        if stale is not None and stale.pid != os.getpid():
            log(f"note: {path} was left by process {stale.pid}, which has ended (a crash, or a killed run): "
                "taken over")
        path.unlink(missing_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid())}
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:   # another process took it between the check and now
            self.check()
            raise UsageError(f"run folder {self.folder} is being started by another process; choose another --out") \
                from None
        with os.fdopen(descriptor, "w") as f:
            json.dump(record, f)
        self.held = True

    def release(self) -> None:
        if self.held:
            (self.folder / LOCK_NAME).unlink(missing_ok=True)
            self.held = False
