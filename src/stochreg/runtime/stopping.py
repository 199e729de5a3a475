"""Turning SIGINT and SIGTERM into a request to stop at the end of the current training step.

A run that is told to stop (Ctrl-C, ``kill``, a cluster's time limit) finishes the step it is
in, writes a full checkpoint and exits, so that ``--resume`` continues exactly. A second Ctrl-C
stops at once (the last periodic checkpoint remains).
"""
from __future__ import annotations

import signal
import threading


class StopRequests:
    """Context manager: while active, ``self.signal_name`` is set when SIGINT/SIGTERM arrive."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():  # handlers only work there
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
