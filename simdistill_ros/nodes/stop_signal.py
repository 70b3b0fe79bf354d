"""Shutdown on SIGINT/SIGTERM that leaves the rclpy context valid until the node has logged its last line
(so that line reaches /rosout, and rcl never reports "Failed to publish log message to rosout: publisher's
context is invalid")."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopSignal:
    """SIGINT and SIGTERM set :attr:`event` (and raise KeyboardInterrupt in the main thread with
    ``interrupt``), in place of rclpy's own handler, which shuts the context down at once. Use with
    ``rclpy.init(signal_handler_options=SignalHandlerOptions.NO)``."""

    def __init__(self, interrupt: bool = False) -> None:
        self.event = threading.Event()
        self.interrupt = interrupt

    def __enter__(self) -> StopSignal:
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.event.set()
        if self.interrupt:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
